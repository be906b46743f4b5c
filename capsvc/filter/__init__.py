"""capsvc's filter language: tcpdump's expressions, matched in Python or compiled to classic BPF.

One parser builds an AST; two back-ends share one lowering of it (``_lower``): a generated Python
matcher (``parse_filter(expr, linktype).match``) and a classic BPF compiler (``compile_bpf``).
libpcap's meaning of every primitive is the reference (see docs/filter.md for the few deliberate
differences). The grammar, in EBNF (keywords case-insensitive; ``{ }`` repeats, ``[ ]`` optional;
``and`` and ``or`` have equal precedence and group from the left, as in libpcap)::

    expr      = unary { ( "and" | "&&" | "or" | "||" | (* side by side: and *) ) unary } ;
    unary     = ( "not" | "!" ) unary | "(" expr ")" | primitive | id ;
    id        = ADDRESS | NUMBER | NAME ;  (* after and/or/not: the previous qualifiers *)
    primitive = [ proto ] [ dir ] [ kind ] ids
              | [ proto ] "proto" ( NUMBER | NAME ) | [ link ] ( "broadcast" | "multicast" )
              | [ "ip" | "ip6" ] "protochain" ( NUMBER | NAME )
              | ( "ip" | "ip6" ) ( "broadcast" | "multicast" )
              | proto_word | link_word | "vlan" [ NUMBER ] | "mpls" [ NUMBER ]
              | "pppoed" | "pppoes" [ NUMBER ] | "llc" [ LLC_KIND ] | "inbound" | "outbound"
              | ( "geneve" | "vxlan" ) [ NUMBER ]  (* later terms of its "and" chain: inside *)
              | "ifindex" NUMBER | "byte" NUMBER ( "=" | "<" | ">" | "&" | "|" ) NUMBER
              | [ "wlan" ] ( "type" TYPE [ "subtype" SUBTYPE ] | "subtype" SUBTYPE | "dir" DIR )
              | ( "less" | "greater" ) NUMBER | arith relop arith ;
    ids       = id | "(" [ "not" ] id { ( "and" | "or" ) [ "not" ] id } ")" ;
    proto     = "ip" | "ip6" | "arp" | "rarp" | "tcp" | "udp" | "sctp" | link ;
    link      = "ether" | "link" | "fddi" | "tr" | "wlan" ;
    dir       = "src" | "dst" | "src" ( "or" | "and" ) "dst" | "dst" ( "or" | "and" ) "src"
              | "addr1" | "addr2" | "addr3" | "addr4" | "ra" | "ta" ;
    kind      = "host" | "net" | "port" | "portrange" ;
    proto_word = "ip" | "ip6" | "arp" | "rarp" | "tcp" | "udp" | "sctp" | "icmp" | "icmp6"
              | "igmp" | "ah" | "esp" | "pim" | "vrrp" | "carp" | "igrp" ;
    link_word = "atalk" | "aarp" | "decnet" | "lat" | "sca" | "mopdl" | "moprc" | "iso"
              | "stp" | "ipx" | "netbeui" ;
    ADDRESS   = IPV4 [ ( "/" NUMBER | "mask" IPV4 ) ] | IPV6 [ "/" NUMBER ] | MAC ;
    relop     = ">" | "<" | ">=" | "<=" | "=" | "==" | "!=" ;
    arith     = term { ( "|" | "^" ) term } ;  term = shift { "&" shift } ;
    shift     = sum { ( "<<" | ">>" ) sum } ;   sum = product { ( "+" | "-" ) product } ;
    product   = atom { ( "*" | "/" | "%" ) atom } ;
    atom      = NUMBER | CONSTANT | "len" | "length" | "-" atom | "(" arith ")"
              | load_proto "[" arith [ ":" ( "1" | "2" | "4" ) ] "]" ;
    load_proto = link | "ppp" | "slip" | "ip" | "ip6" | "arp" | "rarp" | "tcp" | "udp"
               | "sctp" | "icmp" | "icmp6" | "igmp" ;

NUMBER is decimal, 0x-hex or 0-octal. IPV4 is a dotted address of 1-4 parts (fewer parts: a
network of 8 bits a part) or a NUMBER (a whole address for ``host``, classful for ``net``);
IPV6 includes IPv4-mapped forms; MAC is six hex bytes separated by ``:``, ``.`` or ``-``,
``xxxx.xxxx.xxxx`` or twelve hex digits. NAME is a service name (``port http``, a range of them
``ftp-data-ftp``), an IP protocol name (``proto ospf``) or an ethertype name (``ether proto
lldp``), from the tables shipped with capsvc; host names are never resolved. A port is 0-65535.
CONSTANT is one of tcpdump's names (icmptype, icmp-echo, tcpflags, tcp-syn, icmp6type, ...). A
keyword written with a leading backslash (``\\tcp``) is a name. An expression is at most
``MAX_LENGTH`` characters and ``MAX_DEPTH`` levels deep.
"""

from __future__ import annotations

from .._errors import FilterCompileError, FilterError, FilterSyntaxError
from .._packet import SNAPLEN_DEFAULT, LinkType
from ._ast import Node
from ._bpf import BpfInstruction, bpf_dump, emit
from ._compiled import CompiledFilter, Filter, parse_filter
from ._gc import gc_paused
from ._lower import FILTER_LINKTYPES, lower
from ._parser import MAX_DEPTH, MAX_LENGTH, parse, read_as
from ._shared import lowered

__all__ = [
    "FILTER_LINKTYPES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "BpfInstruction",
    "CompiledFilter",
    "Filter",
    "FilterCompileError",
    "FilterError",
    "FilterSyntaxError",
    "Node",
    "bpf_dump",
    "compile_bpf",
    "parse",
    "parse_filter",
    "read_as",
]
#: The former name of ``CompiledFilter`` (kept so code written for it still imports; it is not
#: the ``capsvc.Matcher`` protocol, which any object with ``match(data)`` meets).
Matcher = CompiledFilter
_KERNEL_LIMIT = 4096


def compile_bpf(
    expr_or_node: str | Node,
    linktype: LinkType | int = LinkType.ETHERNET,
    snaplen: int = SNAPLEN_DEFAULT,
    *,
    kernel_vlan: bool = False,
    max_length: int | None = None,
) -> list[BpfInstruction]:
    """Compile a filter to a classic BPF program for ``SO_ATTACH_FILTER``.

    Args:
        expr_or_node: an expression or a parsed AST. An empty expression gives the
            one-instruction program accepting everything.
        linktype: the link type of the frames the program will see (default Ethernet).
        snaplen: what the program returns for an accepted frame; 0 means 262144.
        kernel_vlan: the program is for a live Linux packet socket (Ethernet), where the kernel
            usually takes the outermost 802.1Q tag out of the frame before the filter runs and
            keeps it in the packet's metadata: the first ``vlan`` then also matches a tag there
            (with the ancillary loads SKF_AD_VLAN_TAG_PRESENT and SKF_AD_VLAN_TAG, as libpcap
            does on Linux), and offsets after it only move for a tag found in the frame. Such
            a program runs in the Linux kernel only; without ``vlan`` it is the same program.
            False (default) gives a program for frames as they are, for any BPF interpreter.
            Either way ``inbound``, ``outbound`` and ``ifindex`` on link types whose frames do
            not carry them read the kernel's packet metadata, as libpcap compiles them on
            Linux: such a program is for a live socket only.
        max_length: the longest expression accepted, in characters (default ``MAX_LENGTH``).

    Returns:
        The instructions, at most 4096 long (the kernel's limit), as ``tcpdump -d`` would list.
        ``len`` in them is the packet's length on the wire, as in libpcap and the kernel.

    Raises:
        FilterSyntaxError: the expression is malformed, too long or nested too deeply.
        FilterCompileError: the link type cannot express a primitive, or the program is too long.
    """
    snap = snaplen or SNAPLEN_DEFAULT
    text = expr_or_node if isinstance(expr_or_node, str) else str(expr_or_node)
    kind = _linktype(linktype, text)
    radiotap = kind == LinkType.IEEE802_11_RADIO
    try:
        if isinstance(expr_or_node, str):
            expr = expr_or_node
            node, formula = lowered(expr, kind, kernel_vlan=kernel_vlan, max_length=max_length)
            if formula is None:
                return [BpfInstruction(0x06, 0, 0, snap)]
        else:
            node, expr = expr_or_node, text
            with gc_paused():
                formula = lower(node, kind, expr, kernel_vlan=kernel_vlan)
        with gc_paused():
            program = emit(formula, snap, radiotap=radiotap, limit=_KERNEL_LIMIT)
    except FilterCompileError as exc:
        if exc.expr:
            raise
        raise FilterCompileError(exc.reason, expr, exc.offset) from None
    except RecursionError as exc:
        raise FilterSyntaxError("expression nested too deeply to compile", expr, 0) from exc
    if len(program) > _KERNEL_LIMIT:
        raise FilterCompileError(
            f"program of {len(program)} instructions exceeds the kernel's limit of 4096", expr, 0
        )
    return program


def _linktype(linktype: LinkType | int, expr: str) -> LinkType:
    try:
        return LinkType(linktype)
    except ValueError:
        raise FilterCompileError(f"unsupported link type {linktype!r}", expr, 0) from None
