"""The link-level and protocol primitives on hand-made frames of the protocols they name,
against libpcap.

The generated frames of the differential test hold hardly any DECnet, PPPoE, OSI, MPLS-stack,
Geneve, LLC or broadcast/multicast frames, so there the verdicts of these primitives are false
whatever their offsets and constants. Here each family gets frames of its own protocol, built
field by field (DECnet short and long data headers with and without a pad byte, PPPoE discovery
and sessions carrying IPv4, IPv6 and others, CLNP / ES-IS / IS-IS of every PDU type, MPLS stacks
of one to three labels with the bottom-of-stack bit where it belongs and where it does not,
Geneve with options and inner Ethernet, LLC of every control kind, Ethernet and IP broadcast
and multicast), each on the link types that carry it, whole and cut at every length. For every
expression, our matcher and our BPF program (run by libpcap's bpf_filter) must give the verdict
of libpcap's own program (pcap_compile + pcap_offline_filter) on every frame, and refuse what
libpcap refuses. On a cut frame where libpcap's unoptimized program reads past the end, the
optimizers may drop different reads (docs/filter.md, "Frames too short for the expression"):
there our matcher and our program must only agree with each other. ``byte N & M`` and
``byte N | M``, which libpcap 1.10 compiles wrongly, are held to the rule written out in the
test.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import _bpfvm as bpfvm
import pytest
from _helpers import MAC_A, MAC_B, ether, icmp, icmp6, ipv4, ipv6, mac, sll, sll2, tcp, udp
from _oracle import Compiled, OracleError, run_program

from capsvc._packet import LinkType
from capsvc.filter import (
    FILTER_LINKTYPES,
    FilterCompileError,
    FilterError,
    compile_bpf,
    parse_filter,
)
from capsvc.filter._link import TUNNEL_READS

L = LinkType
#: pcap_open_dead wants DLT_ values; they equal the LINKTYPE_ ones except for raw IP.
DLT = {L.RAW: 12}

IP4 = bytes(ipv4("10.0.0.1", "10.0.0.2", tcp(1000, 80)))
IP4_UDP = bytes(ipv4("10.0.0.3", "255.255.255.255", udp(68, 67, b"boot")))
IP6 = bytes(ipv6("2001:db8::1", "2001:db8::2", udp(53, 53, b"dns")))
#: IPv6 with a fragment header before TCP (libpcap looks one header further for it).
IP6_FRAG = bytes(ipv6("2001:db8::1", "2001:db8::2", tcp(1, 80), nh=6, ext=((44, bytes(6)),)))
IP6_FRAG_UDP = bytes(ipv6("2001:db8::1", "2001:db8::2", udp(1, 53), nh=17, ext=((44, bytes(6)),)))
ARP = bytes(8) + bytes(20)


# -- frame builders ------------------------------------------------------------------------------


def llc_frame(
    llc: bytes, *, dst: str = MAC_B, src: str = MAC_A, vlans: Sequence[int] = ()
) -> bytes:
    """An 802.3 frame (a length, not a type, after the addresses) carrying ``llc``."""
    tags = b"".join(struct.pack("!HH", 0x8100, vid) for vid in vlans)
    return mac(dst) + mac(src) + tags + struct.pack("!H", len(llc)) + llc


def wlan(body: bytes, *, fc0: int = 0x08, fc1: int = 0x01, dst: str = MAC_B) -> bytes:
    """An 802.11 frame: frame control, duration, three addresses (four when both DS bits are
    set), sequence control, a QoS field for a QoS data subtype, then ``body``."""
    addr1 = mac(dst) if fc1 & 3 in (0, 2) else mac("02:00:00:00:00:99")
    head = bytes([fc0, fc1]) + b"\0\0" + addr1 + mac(MAC_A) + mac(dst) + b"\0\0"
    if fc1 & 3 == 3:
        head += mac("02:00:00:00:00:77")
    if fc0 & 0x88 == 0x88:
        head += b"\0\0"
    return head + body


def snap(ethertype: int) -> bytes:
    return b"\xaa\xaa\x03\0\0\0" + struct.pack("!H", ethertype)


def radiotap(frame: bytes, *, flags: int | None = None, tsft: bool = False) -> bytes:
    """A radiotap header (optionally with TSFT and a flags field; flag 0x20 pads the 802.11
    header to a multiple of 4 bytes) in front of an 802.11 frame."""
    present, fields = 0, b""
    if tsft:
        present, fields = present | 0x01, fields + bytes(8)
    if flags is not None:
        present, fields = present | 0x02, fields + bytes([flags])
    header = struct.pack("<BBHI", 0, 0, 8 + len(fields), present) + fields
    if flags is not None and flags & 0x20 and frame[0] & 0x0C == 0x08:
        hdrlen = 24 + (6 if frame[1] & 3 == 3 else 0) + (2 if frame[0] & 0x88 == 0x88 else 0)
        frame = frame[:hdrlen] + b"\0" * (-hdrlen % 4) + frame[hdrlen:]
    return header + frame


def carry(linktype: LinkType, ethertype: int, body: bytes) -> list[bytes]:
    """``body`` (a packet of protocol ``ethertype``; an 802.2 SAP at or below 1500 with the
    LLC header in ``body``) in frames of ``linktype``, in each layout that link type has."""
    llc = ethertype <= 1500
    if linktype == L.ETHERNET:
        if llc:
            return [llc_frame(body), llc_frame(body, vlans=(7,))]
        return [ether(body, ethertype=ethertype), ether(body, ethertype=ethertype, vlans=(7,))]
    if linktype == L.LINUX_SLL:
        return [sll(body, protocol=4 if llc else ethertype)]
    if linktype == L.LINUX_SLL2:
        return [sll2(body, protocol=4 if llc else ethertype)]
    if linktype in (L.PPP, L.PPP_HDLC):
        ppp = {0x0800: 0x21, 0x86DD: 0x57, 0x6003: 0x27, 0xFE: 0x23, 0x8847: 0x281}
        proto = ppp.get(ethertype, ethertype)
        return [b"\xff\x03" + struct.pack("!H", proto) + (body[3:] if llc else body)]
    if linktype == L.C_HDLC:
        if llc:
            return [b"\x0f\x00\xfe\xfe" + body[3:], b"\x0f\x00\xfe\xfe" + body[2:]]
        return [b"\x0f\x00" + struct.pack("!H", ethertype) + body]
    if linktype in (L.IEEE802_11, L.IEEE802_11_RADIO):
        payload = body if llc else snap(ethertype) + body
        frames = [wlan(payload), wlan(payload, fc0=0x88, fc1=0x02), wlan(payload, fc1=0x03)]
        if linktype == L.IEEE802_11:
            return frames
        return [
            radiotap(frames[0]),
            radiotap(frames[1], flags=0x20),
            radiotap(frames[2], flags=0x00, tsft=True),
            radiotap(frames[0], flags=0x20, tsft=True),
        ]
    if linktype == L.NULL:
        return [struct.pack("=I", 2) + body]
    return [body]


# -- the comparison ------------------------------------------------------------------------------


def cuts(frames: Sequence[bytes]) -> list[bytes]:
    """The frames, and each cut at every shorter length."""
    out = []
    for frame in frames:
        out += [frame[:n] for n in range(len(frame) + 1)]
    return out


def unradiotap(frame: bytes) -> bytes | None:
    """The 802.11 frame after a radiotap header without padding (None: the frame ends inside
    the radiotap header, where every program for radiotap frames rejects it)."""
    if len(frame) < 4 or len(frame) < int.from_bytes(frame[2:4], "little"):
        return None
    return frame[int.from_bytes(frame[2:4], "little") :]


def differences(
    expr: str,
    linktype: LinkType,
    frames: Sequence[bytes],
    *,
    via: LinkType | None = None,
    bpf_too: bool = True,
) -> list[str]:
    """Where our matcher or our BPF program differs from libpcap on the frames (and on every
    cut of them); that one refuses the expression and the other does not. With ``via``
    (IEEE802_11 for IEEE802_11_RADIO, where libpcap 1.10 miscompiles the expression), the
    reference is libpcap's verdict for ``via`` on each frame without its radiotap header."""
    packets = cuts(frames)
    ref_type = via or linktype
    dlt = DLT.get(ref_type, int(ref_type))
    refs = [unradiotap(p) if via else p for p in packets]
    try:
        compiled = Compiled(expr, dlt)
    except OracleError as exc:
        try:
            ours = parse_filter(expr, linktype)
        except FilterError:
            with pytest.raises(FilterError):
                compile_bpf(expr, linktype)
            return []
        rejects_all = "rejects all packets" in str(exc)
        if rejects_all and ours is not None and not any(ours.match(p) for p in packets):
            return []
        return [f"{expr!r} on {linktype.name}: libpcap refuses ({exc}), we accept"]
    try:
        known = compiled.verdicts([r for r in refs if r is not None])
    finally:
        compiled.close()
    found = iter(known)
    theirs = [False if r is None else next(found) for r in refs]
    plain = Compiled(expr, dlt, optimize=False)
    try:
        unoptimized = plain.instructions()
    finally:
        plain.close()
    try:
        matcher = parse_filter(expr, linktype)
        program = compile_bpf(expr, linktype) if bpf_too else None
    except FilterCompileError as exc:
        return [f"{expr!r} on {linktype.name}: we refuse ({exc.reason}), libpcap accepts"]
    assert matcher is not None
    if program is None:
        ran = [matcher.match(p) for p in packets]
    else:
        ran = run_program([(i.code, i.jt, i.jf, i.k) for i in program], packets)
    out = []
    for packet, ref, want, bpf in zip(packets, refs, theirs, ran, strict=True):
        got = matcher.match(packet)
        if got == want and bpf == want:
            continue
        short = ref is None or bpfvm.run(unoptimized, ref) is None
        if short and got == bpf:
            continue  # a frame too short for the expression: the optimizers may differ
        out.append(
            f"{expr!r} on {linktype.name}, frame {packet.hex()}: libpcap {want}, "
            f"matcher {got}, program {bpf}"
        )
    return out


def check(
    exprs: Sequence[str],
    linktypes: Sequence[LinkType],
    frames_of: Callable[[LinkType], list[bytes]],
    *,
    via: LinkType | None = None,
) -> None:
    """Every expression on every link type, on the frames ``frames_of(linktype)`` builds."""
    problems: list[str] = []
    for linktype in linktypes:
        frames = frames_of(linktype)
        assert frames
        for expr in exprs:
            problems += differences(expr, linktype, frames, via=via)[:3]
    assert not problems, "\n".join(problems[:30])


# -- DECnet ---------------------------------------------------------------------------------------


def dn(area: int, node: int) -> bytes:
    """A DECnet address as it is on the wire (little-endian AREA << 10 | NODE)."""
    return struct.pack("<H", area << 10 | node)


def decnet(dst: bytes, src: bytes, *, long: bool, pad: int = 0, flags: int | None = None) -> bytes:
    """A DECnet routing message: the length, ``pad`` pad bytes (the first 0x80 | their
    count), the flags (data, short 0x02 or long 0x06 format) and the short or long data
    header with the destination and source."""
    if long:
        flags = 0x06 if flags is None else flags
        head = bytes([flags, 0, 0]) + b"\xaa\x00\x04\x00" + dst + bytes(2)
        head += b"\xaa\x00\x04\x00" + src + bytes(4)
    else:
        flags = 0x02 if flags is None else flags
        head = bytes([flags]) + dst + src + b"\x00"
    padding = bytes([0x80 | pad]) + bytes(pad - 1) if pad else b""
    body = padding + head + b"data"
    return struct.pack("<H", len(body)) + body


A12, A34, ATOP, A02 = dn(1, 2), dn(3, 4), dn(63, 1023), dn(0, 2)
DECNET = [
    decnet(A12, A34, long=False),
    decnet(A34, A12, long=False),
    decnet(A12, A34, long=True),
    decnet(A34, A12, long=True),
    decnet(A12, A34, long=False, pad=1),
    decnet(A34, A12, long=False, pad=1),
    decnet(A12, A34, long=True, pad=1),
    decnet(A34, A12, long=True, pad=1),
    decnet(A12, A12, long=False),
    decnet(ATOP, A02, long=True, pad=1),
    decnet(A02, ATOP, long=False, pad=1),
    decnet(A12, A34, long=False, pad=2),  # two pad bytes: libpcap knows one only
    decnet(A12, A34, long=True, flags=0x0E),  # other flag bits set (return to sender)
    decnet(A12, A34, long=False, flags=0x0A),
    decnet(A12, A34, long=False, flags=0x03),  # not a data message
    decnet(A12, A34, long=True, flags=0x07),
    decnet(A12, A34, long=True, pad=1, flags=0x04),
    decnet(struct.pack(">H", 1 << 10 | 2), A34, long=False),  # big-endian: not 1.2
]
DECNET_EXPRS = [
    "decnet",
    "decnet host 1.2",
    "decnet src 1.2",
    "decnet dst 1.2",
    "decnet src host 3.4",
    "decnet dst host 3.4",
    "decnet host 63.1023",
    "decnet src 0.2",
    "decnet dst 0.2",
    "decnet host 2.1",
    "decnet src 1.2 and decnet dst 3.4",
    "decnet src 1.2 or decnet dst 1.2",
    "decnet src 1.2 and decnet dst 1.2",
    "not decnet host 1.2",
    "vlan and decnet host 1.2",
]
DECNET_LINKS = [L.ETHERNET, L.LINUX_SLL, L.LINUX_SLL2, L.PPP, L.C_HDLC, L.IEEE802_11_RADIO, L.RAW]


def _decnet_frames(linktype: LinkType) -> list[bytes]:
    out = [f for body in DECNET for f in carry(linktype, 0x6003, body)]
    return out + carry(linktype, 0x0800, IP4)


@pytest.mark.parametrize("linktype", DECNET_LINKS, ids=lambda lt: lt.name)
def test_decnet_hosts_in_every_data_header(linktype: LinkType) -> None:
    check(DECNET_EXPRS, [linktype], _decnet_frames)


# -- PPPoE ----------------------------------------------------------------------------------------


def pppoe_session(sid: int, proto: int, payload: bytes, *, code: int = 0) -> bytes:
    """A PPPoE session packet (version and type 1, ``code``, the session id, the length) with
    the PPP protocol ``proto`` and ``payload``."""
    ppp = struct.pack("!H", proto) + payload
    return struct.pack("!BBHH", 0x11, code, sid, len(ppp)) + ppp


PADI = struct.pack("!BBHH", 0x11, 0x09, 0, 4) + b"\x01\x01\x00\x00"
PADS = struct.pack("!BBHH", 0x11, 0x65, 0x1234, 4) + b"\x01\x01\x00\x00"
IP4_VIA = bytes(ipv4("10.0.0.5", "10.0.0.6", udp(53, 53, b"q")))
MPLS_IN_PPPOE = struct.pack("!I", 100 << 12 | 0x100 | 64) + IP4
PPPOE_SESSIONS = [
    pppoe_session(0x1234, 0x0021, IP4),
    pppoe_session(0x1234, 0x0057, IP6),
    pppoe_session(0x0001, 0x0021, IP4_VIA),
    pppoe_session(0xFFFF, 0x0057, IP6),
    pppoe_session(0x1235, 0x0021, IP4),
    pppoe_session(0x3412, 0x0021, IP4),
    pppoe_session(0x0000, 0xC021, b"\x01\x01\x00\x04"),  # LCP
    pppoe_session(0x1234, 0x0281, MPLS_IN_PPPOE),
    pppoe_session(0x1234, 0x0021, IP6),  # says IPv4, carries an IPv6 packet
    pppoe_session(0x1234, 0x8864, pppoe_session(7, 0x0021, IP4)),
    pppoe_session(0x1234, 0x0057, IP6_FRAG),
    pppoe_session(0x1234, 0x0057, IP6_FRAG_UDP),
]
PPPOE_EXPRS = [
    "pppoed",
    "pppoes",
    "pppoes 0x1234",
    "pppoes 1",
    "pppoes 65535",
    "pppoes 0",
    "pppoed or pppoes",
    "not pppoes",
    "pppoes and ip",
    "pppoes and ip6",
    "pppoes 0x1234 and ip",
    "pppoes 0x1234 and ip6",
    "pppoes and tcp",
    "pppoes and udp",
    "pppoes and tcp port 80",
    "pppoes and udp port 53",
    "pppoes and ip6 proto 6",
    "pppoes and ip6 and udp",
    "pppoes and host 10.0.0.2",
    "pppoes and src host 10.0.0.5",
    "pppoes and ip6 dst host 2001:db8::2",
    "pppoes and ip[9] = 6",
    "pppoes and ip proto 17",
    "pppoes 4660 and tcp dst port 80",
    "pppoes and ip and ip[16:4] = 0x0a000002",
    "pppoes and ip broadcast",
    "pppoes and mpls",
    "pppoes and mpls 100 and ip",
    "pppoes and mpls and tcp port 80",
    "pppoes and pppoes",
    "vlan and pppoes and ip",
    "vlan 7 and pppoes 0x1234 and tcp port 80",
    "vlan and pppoed",
]
PPPOE_LINKS = [L.ETHERNET, L.LINUX_SLL, L.LINUX_SLL2, L.IEEE802_11, L.RAW, L.PPP, L.C_HDLC]


def _pppoe_frames(linktype: LinkType) -> list[bytes]:
    out = carry(linktype, 0x8863, PADI) + carry(linktype, 0x8863, PADS)
    out += [f for body in PPPOE_SESSIONS for f in carry(linktype, 0x8864, body)]
    return out + carry(linktype, 0x0800, IP4)


@pytest.mark.parametrize("linktype", PPPOE_LINKS, ids=lambda lt: lt.name)
def test_pppoe_sessions_and_what_they_carry(linktype: LinkType) -> None:
    check(PPPOE_EXPRS, [linktype], _pppoe_frames)


def _radiotap_unpadded(
    build: Callable[[LinkType], list[bytes]],
) -> Callable[[LinkType], list[bytes]]:
    """The frames ``build`` makes for 802.11, behind radiotap headers that pad nothing."""

    def frames(_linktype: LinkType) -> list[bytes]:
        out = []
        for frame in build(L.IEEE802_11):
            out += [radiotap(frame), radiotap(frame, flags=0x02, tsft=True)]
        return out

    return frames


def test_pppoe_after_radiotap_as_on_802_11() -> None:
    """libpcap 1.10 keeps the radiotap header's length for ``pppoes`` in the scratch register
    it then overwrites with the payload's offset (its program reads the frame control at 0):
    the reference is its verdict on the same 802.11 frame without the radiotap header."""
    check(PPPOE_EXPRS, [L.IEEE802_11_RADIO], _radiotap_unpadded(_pppoe_frames), via=L.IEEE802_11)


# -- OSI: CLNP, ES-IS, IS-IS ----------------------------------------------------------------------


def osi(nlpid: int, body: bytes) -> bytes:
    """An OSI packet behind its 802.2 header (DSAP and SSAP 0xFE, UI): the network-layer
    protocol id, then ``body``."""
    return b"\xfe\xfe\x03" + bytes([nlpid]) + body


def isis(pdu_type: int) -> bytes:
    """An IS-IS PDU behind its 802.2 header: the header (NLPID 0x83, length indicator,
    version, id length, the PDU type byte whose low 5 bits are the type, version, reserved,
    maximum area addresses) and a few bytes of PDU."""
    return osi(0x83, bytes([27, 1, 0, pdu_type, 1, 0, 0]) + bytes(12))


#: Every IS-IS PDU type (15-27), some with the reserved high bits of the type byte set.
ISIS_TYPES = [15, 16, 17, 18, 20, 24, 25, 26, 27, 0x32, 0xF1, 0x14 | 0x80, 19, 0]
OSI = [
    osi(0x81, b"\x1c\x01\x1e\x1c" + bytes(24)),  # CLNP
    osi(0x82, b"\x0f\x01\x00\x02" + bytes(12)),  # ES-IS
    osi(0x80, bytes(16)),  # another NLPID
    b"\xfe\xfe\x13\x83" + bytes(20),  # UI with the poll bit: the control byte is not read
    b"\xfe\xfc\x03\x81" + bytes(20),  # SSAP differs
    b"\x42\x42\x03\x00\x00\x00\x00" + bytes(20),  # spanning tree, not OSI
    *(isis(t) for t in ISIS_TYPES),
]
ISO_EXPRS = [
    "iso",
    "clnp",
    "esis",
    "es-is",
    "isis",
    "is-is",
    "iso proto 0x81",
    "iso proto \\clnp",
    "iso proto 0x83",
    "iso proto 128",
    "isis proto 18",
    "isis proto 0x14",
    "isis proto 0x12",
    "isis proto 19",
    "l1",
    "l2",
    "iih",
    "lsp",
    "snp",
    "csnp",
    "psnp",
    "not isis",
    "isis and not l1",
    "vlan and isis",
    "vlan and clnp",
]
ISO_LINKS = [L.ETHERNET, L.LINUX_SLL, L.PPP, L.C_HDLC, L.IEEE802_11, L.IEEE802_11_RADIO, L.RAW]


def _iso_frames(linktype: LinkType) -> list[bytes]:
    out = [f for body in OSI for f in carry(linktype, 0xFE, body)]
    return out + carry(linktype, 0x0800, IP4)


@pytest.mark.parametrize("linktype", ISO_LINKS, ids=lambda lt: lt.name)
def test_osi_protocols_and_isis_pdu_types(linktype: LinkType) -> None:
    check(ISO_EXPRS, [linktype], _iso_frames)


# -- MPLS -----------------------------------------------------------------------------------------


def mpls(*labels: tuple[int, int], payload: bytes = IP4, tc: int = 5, ttl: int = 64) -> bytes:
    """An MPLS label stack: (label, bottom-of-stack bit) for each entry, then ``payload``."""
    return b"".join(struct.pack("!I", lab << 12 | tc << 9 | s << 8 | ttl) for lab, s in labels) + (
        payload
    )


MPLS = [
    mpls((100, 1)),
    mpls((100, 1), payload=IP6),
    mpls((200, 1), payload=IP4_UDP),
    mpls((100, 0), (200, 1)),
    mpls((100, 0), (200, 1), payload=IP6),
    mpls((200, 0), (100, 1)),
    mpls((100, 0), (200, 0), (300, 1)),
    mpls((100, 0), (200, 0), (300, 1), payload=IP6),
    mpls((300, 0), (200, 0), (100, 1)),
    mpls((100, 1), (200, 1)),  # a bottom-of-stack bit too early
    mpls((100, 0), payload=IP4),  # no bottom of stack at all
    mpls((0, 1)),
    mpls((0xFFFFF, 1), tc=7, ttl=255),
    mpls((101, 1), tc=0, ttl=0),
    mpls((100 | 0x80000, 1)),
    mpls((100, 1), payload=b"\x50" + IP4[1:]),  # neither IPv4 nor IPv6
    mpls((100, 1), payload=IP6_FRAG),
    mpls((100, 1), payload=bytes(ipv6("fe80::1", "ff02::1", icmp6(135), nh=58))),
    mpls((100, 1), payload=bytes(ipv4("10.0.0.1", "224.0.0.1", icmp(8), proto=1))),
    mpls((100, 1), payload=bytes(ipv4("10.0.0.1", "224.0.0.1", bytes(8), proto=2))),
    mpls((100, 0), (200, 1), payload=IP6_FRAG_UDP),
]
MPLS_EXPRS = [
    "mpls",
    "mpls 100",
    "mpls 200",
    "mpls 0",
    "mpls 1048575",
    "mpls 101",
    "not mpls 100",
    "mpls and mpls",
    "mpls and mpls 200",
    "mpls 100 and mpls 200",
    "mpls 100 and mpls",
    "mpls and mpls and mpls",
    "mpls and mpls and mpls 300",
    "mpls 100 and mpls 200 and mpls 300",
    "mpls 300 and mpls 200 and mpls 100",
    "mpls and ip",
    "mpls and ip6",
    "mpls 100 and ip",
    "mpls and mpls and ip",
    "mpls and mpls and ip6",
    "mpls and mpls and mpls and ip6",
    "mpls and tcp",
    "mpls and udp",
    "mpls and ip6 proto 17",
    "mpls and icmp6",
    "mpls and icmp",
    "mpls and igmp",
    "mpls and ip multicast",
    "mpls and mpls and tcp",
    "mpls and tcp port 80",
    "mpls and udp dst port 67",
    "mpls 100 and host 10.0.0.2",
    "mpls and mpls and ip6 host 2001:db8::2",
    "mpls and ip broadcast",
    "mpls and ip[9] = 17",
    "mpls and not ip",
    "mpls and arp",
    "mpls and vlan",
    "vlan and mpls 100",
    "vlan and mpls and mpls 200 and ip",
]
MPLS_LINKS = [L.ETHERNET, L.PPP, L.PPP_HDLC, L.C_HDLC, L.LINUX_SLL, L.RAW, L.IEEE802_11]


def _mpls_frames(linktype: LinkType) -> list[bytes]:
    out = [f for body in MPLS for f in carry(linktype, 0x8847, body)]
    return out + carry(linktype, 0x0800, IP4) + carry(linktype, 0x8848, MPLS[0])


@pytest.mark.parametrize("linktype", MPLS_LINKS, ids=lambda lt: lt.name)
def test_mpls_stacks_of_one_to_three_labels(linktype: LinkType) -> None:
    check(MPLS_EXPRS, [linktype], _mpls_frames)


# -- Geneve ---------------------------------------------------------------------------------------


def geneve(vni: int, proto: int, inner: bytes, *, options: int = 0, version: int = 0) -> bytes:
    """A Geneve header (version, the options' length in 4-byte words, the protocol type, the
    VNI) with ``options`` words of options, then ``inner``."""
    first = version << 6 | options
    opts = b"".join(struct.pack("!HBB", 0x0104, 0x80 | i, 0) for i in range(options))
    return struct.pack("!BBHI", first, 0x40, proto, vni << 8 | 0xAB) + opts + inner


INNER4 = bytes(ipv4("10.9.0.1", "10.9.0.2", tcp(1000, 80)))
INNER6 = bytes(ipv6("2001:db8::9", "ff02::fb", udp(53, 5353)))
INNER_ETH4 = bytes(ether(INNER4, src="02:00:00:00:00:0c", dst="ff:ff:ff:ff:ff:ff"))
INNER_ETH6 = bytes(ether(INNER6, src="02:00:00:00:00:0d", dst="33:33:00:00:00:01"))
GENEVE = [
    geneve(12345, 0x6558, INNER_ETH4),
    geneve(12345, 0x6558, INNER_ETH4, options=1),
    geneve(12345, 0x6558, INNER_ETH6, options=3),
    geneve(5, 0x0800, INNER4),
    geneve(5, 0x0800, INNER4, options=2),
    geneve(5, 0x86DD, INNER6, options=1),
    geneve(0xFFFFFF, 0x86DD, INNER6),
    geneve(0, 0x6558, bytes(ether(ARP, ethertype=0x0806))),
    geneve(12345, 0x6558, INNER_ETH4, version=1),
    geneve(12345, 0x6558, INNER_ETH4, version=2, options=1),
    geneve(12344, 0x6558, INNER_ETH4),
    geneve(5, 0x8847, mpls((100, 1))),
    geneve(7, 0x0800, IP4_UDP, options=1),
    geneve(7, 0x6558, bytes(ether(IP4_UDP)), options=1),
]
#: Geneve in Geneve: the inner tunnel's offsets count from the outer one's computed end.
GENEVE += [
    geneve(
        9, 0x6558, bytes(ether(ipv4("10.8.0.1", "10.8.0.2", udp(1, 6081, GENEVE[1])))), options=1
    ),
    geneve(9, 0x0800, bytes(ipv4("10.8.0.1", "10.8.0.2", udp(1, 6081, GENEVE[4])))),
    geneve(9, 0x86DD, bytes(ipv6("2001:db8::8", "2001:db8::9", udp(1, 6081, GENEVE[5])))),
]
GENEVE_EXPRS = [
    "geneve",
    "geneve 12345",
    "geneve 5",
    "geneve 0",
    "geneve 16777215",
    "geneve 12344",
    "not geneve",
    "geneve and ip",
    "geneve and ip6",
    "geneve and arp",
    "geneve and tcp",
    "geneve and udp",
    "geneve and tcp port 80",
    "geneve and udp dst port 5353",
    "geneve 5 and host 10.9.0.2",
    "geneve and ip dst host 10.9.0.2",
    "geneve and ip6 src host 2001:db8::9",
    "geneve 12345 and ip and tcp dst port 80",
    "geneve and ip[9] = 6",
    "geneve and ether proto 0x0800",
    "geneve and ether proto 0x6558",
    "geneve and ip6 multicast",
    "geneve and ip broadcast",
    "geneve and link[0] = 0xff",
    "geneve and byte 0 = 0xff",
    "geneve and byte 14 = 0x45",
    "geneve and byte 1 < 0x40",
    "geneve and geneve",
    "geneve 9 and geneve 12345 and tcp port 80",
    "geneve and geneve 5 and ip and host 10.9.0.2",
    "geneve and geneve and ip6",
    "geneve and link[link[12] - 8] = 0xff",
    "geneve and ether[ether[13] & 1] = 2",
]
GENEVE_LINKS = [L.ETHERNET, L.RAW, L.LINUX_SLL, L.PPP]


def _geneve_frames(linktype: LinkType) -> list[bytes]:
    out = []
    for body in GENEVE:
        out += carry(linktype, 0x0800, bytes(ipv4("10.0.0.1", "10.0.0.2", udp(4000, 6081, body))))
        out += carry(
            linktype, 0x86DD, bytes(ipv6("2001:db8::1", "2001:db8::2", udp(1, 6081, body)))
        )
    # TCP to Geneve's port is not Geneve.
    out += carry(linktype, 0x0800, bytes(ipv4("10.0.0.1", "10.0.0.2", tcp(4000, 6081, GENEVE[0]))))
    # Later fragments (with and without more to come) are not Geneve; a first one is.
    for frag in (0x2001, 0x0001, 0x2000, 0x1FFF):
        later = ipv4("10.0.0.1", "10.0.0.2", udp(4000, 6081, GENEVE[0]), flags_frag=frag)
        out += carry(linktype, 0x0800, bytes(later))
    return out + carry(linktype, 0x0800, bytes(ipv4("10.0.0.1", "10.0.0.2", udp(6081, 4000))))


@pytest.mark.parametrize("linktype", GENEVE_LINKS, ids=lambda lt: lt.name)
def test_geneve_with_options_and_what_it_carries(linktype: LinkType) -> None:
    check(GENEVE_EXPRS, [linktype], _geneve_frames)


# -- LLC ------------------------------------------------------------------------------------------

#: LLC control bytes: I frames (N(S), N(R), poll), S frames (RR, RNR, REJ, with and without
#: poll/final), U frames (UI, UA, DISC, DM, SABME, TEST, XID, FRMR, with and without P/F).
CONTROLS = [0x00, 0x02, 0xFE, 0x01, 0x11, 0x05, 0x09, 0x0D, 0x03, 0x13, 0x63, 0x73, 0x43]
CONTROLS += [0x53, 0x0F, 0x1F, 0x6F, 0x7F, 0xE3, 0xF3, 0xAF, 0xBF, 0x87, 0x97, 0x07, 0x8F]
LLC = [bytes([0x42, 0x42, c]) + bytes(20) for c in CONTROLS]
LLC += [
    b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + IP4,
    b"\xff\xff" + bytes(28),
    b"\xe0\xe0\x03" + bytes(9),
]
LLC_EXPRS = ["llc", "not llc", "vlan and llc", "llc and stp", "llc u and netbeui"]
LLC_EXPRS += [f"llc {kind}" for kind in ("i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc")]
LLC_EXPRS += [f"llc {kind}" for kind in ("dm", "sabme", "test", "xid", "frmr")]
LLC_LINKS = [L.ETHERNET, L.IEEE802_11, L.IEEE802_11_RADIO, L.LINUX_SLL, L.RAW]


def _llc_frames(linktype: LinkType) -> list[bytes]:
    out = [f for body in LLC for f in carry(linktype, 0x42, body)]
    out += carry(linktype, 0x0800, IP4)
    if linktype == L.ETHERNET:
        out += [
            llc_frame(b"\xf0\xf0\x03" + bytes(40))[:12] + b"\x05\xdc" + b"\xf0\xf0\x03" + bytes(9)
        ]
        out += [
            llc_frame(b"\xf0\xf0\x03" + bytes(40))[:12] + b"\x05\xdd" + b"\xf0\xf0\x03" + bytes(9)
        ]
    if linktype in (L.IEEE802_11, L.IEEE802_11_RADIO):
        frames = [wlan(LLC[0], fc0=0x48), wlan(LLC[0], fc0=0xD4), wlan(LLC[0], fc0=0x80)]
        out += frames if linktype == L.IEEE802_11 else [radiotap(f) for f in frames]
    return out


@pytest.mark.parametrize("linktype", LLC_LINKS, ids=lambda lt: lt.name)
def test_llc_frames_by_their_control_byte(linktype: LinkType) -> None:
    check(LLC_EXPRS, [linktype], _llc_frames)


# -- broadcast, multicast, Ethernet addresses -----------------------------------------------------

DESTINATIONS = ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01", MAC_B]
DESTINATIONS += ["ff:ff:ff:ff:ff:fe", "fe:ff:ff:ff:ff:ff", "ff:ff:00:ff:ff:ff", "03:00:00:00:00:00"]
IP_DESTINATIONS = ["255.255.255.255", "0.0.0.0", "224.0.0.1", "239.255.255.255", "223.255.255.255"]
IP_DESTINATIONS += ["255.255.255.254", "10.0.0.255", "240.0.0.1", "0.0.0.1", "255.0.0.0"]
IP6_DESTINATIONS = ["ff02::1", "ff00::", "fe80::1", "2001:db8::2", "fff0::1", "7f00::"]
CAST_EXPRS = [
    "broadcast",
    "multicast",
    "ether broadcast",
    "ether multicast",
    "link broadcast",
    "not broadcast",
    "ip broadcast",
    "ip multicast",
    "ip6 multicast",
    "ip6 broadcast",
    "vlan and broadcast",
    "vlan and ip broadcast",
    "multicast and not broadcast",
]
CAST_LINKS = [L.ETHERNET, L.IEEE802_11, L.IEEE802_11_RADIO, L.LINUX_SLL, L.RAW, L.PPP]


def _cast_frames(linktype: LinkType) -> list[bytes]:
    packets = [bytes(ipv4("10.0.0.1", d, udp(1, 2))) for d in IP_DESTINATIONS]
    packets += [bytes(ipv6("fe80::2", d, udp(1, 2))) for d in IP6_DESTINATIONS]
    out = []
    for packet in packets:
        out += carry(linktype, 0x86DD if packet[0] >> 4 == 6 else 0x0800, packet)
    if linktype == L.ETHERNET:
        out += [ether(IP4, dst=d) for d in DESTINATIONS]
        out += [ether(IP4, dst=d, vlans=(3,)) for d in DESTINATIONS[:2]]
        out += [ether(ARP, ethertype=0x0806, dst=d) for d in DESTINATIONS[:3]]
    if linktype in (L.IEEE802_11, L.IEEE802_11_RADIO):
        frames = [wlan(snap(0x0800) + IP4, dst=d, fc1=fc1) for d in DESTINATIONS for fc1 in (0, 2)]
        frames += [wlan(bytes(12), fc0=0x80, dst=d) for d in DESTINATIONS[:2]]  # beacons
        frames += [wlan(b"", fc0=0xD4, dst=d) for d in DESTINATIONS[:2]]  # ACKs
        out += frames if linktype == L.IEEE802_11 else [radiotap(f) for f in frames]
    return out


@pytest.mark.parametrize("linktype", CAST_LINKS, ids=lambda lt: lt.name)
def test_broadcast_and_multicast(linktype: LinkType) -> None:
    check(CAST_EXPRS, [linktype], _cast_frames)


HOSTS = ["02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:ff:00:00:0a", "03:00:00:00:00:0a"]
HOSTS += ["02:00:00:00:01:0a", "ff:ff:ff:ff:ff:ff"]
ETHER_EXPRS = [
    "ether host 02:00:00:00:00:0a",
    "ether src 02:00:00:00:00:0a",
    "ether dst 02:00:00:00:00:0a",
    "ether src host 02:00:00:00:00:0b",
    "ether dst host 02:00:00:00:00:0b",
    "ether src and dst host 02:00:00:00:00:0a",
    "ether src or dst 02:00:00:00:00:0b",
    "ether host ff:ff:ff:ff:ff:ff",
    "wlan host 02:00:00:00:00:0a",
    "wlan src 02:00:00:00:00:0a",
    "wlan dst 02:00:00:00:00:0b",
    "vlan and ether src 02:00:00:00:00:0a",
]


def _ether_frames(linktype: LinkType) -> list[bytes]:
    if linktype == L.ETHERNET:
        out = [ether(IP4, src=s, dst=d) for s in HOSTS for d in HOSTS[:3]]
        return [*out, ether(IP4, src=MAC_A, dst=MAC_B, vlans=(9,))]
    frames = [wlan(snap(0x0800) + IP4, dst=d, fc1=fc1) for d in HOSTS for fc1 in (0, 1, 2, 3)]
    frames += [wlan(bytes(12), fc0=0x80, dst=d) for d in HOSTS[:3]]
    return frames if linktype == L.IEEE802_11 else [radiotap(f) for f in frames]


@pytest.mark.parametrize("linktype", [L.ETHERNET, L.IEEE802_11], ids=lambda lt: lt.name)
def test_ethernet_addresses(linktype: LinkType) -> None:
    check(ETHER_EXPRS, [linktype], _ether_frames)


# -- byte N OP M ----------------------------------------------------------------------------------

BYTE_EXPRS = ["byte 0 = 8", "byte 0 = 0", "byte 1 = 2", "byte 12 = 8", "byte 3 < 4"]
BYTE_EXPRS += ["byte 3 > 3", "byte 2 < 9", "byte 2 > 8", "byte 13 = 0", "byte 0 > 0x80"]
BYTE_EXPRS += ["not byte 1 < 1", "byte 14 = 0x45 and byte 23 = 6", "arp or rarp", "icmp or igmp"]
BYTE_LINKS = [L.ETHERNET, L.IEEE802_11, L.IEEE802_11_RADIO, L.LINUX_SLL, L.RAW, L.PPP]


def _byte_frames(linktype: LinkType) -> list[bytes]:
    out = carry(linktype, 0x0800, IP4) + carry(linktype, 0x86DD, IP6)
    out += carry(linktype, 0x0806, ARP) + carry(linktype, 0x8035, ARP)
    out += carry(linktype, 0x0800, bytes(ipv4("10.0.0.1", "10.0.0.2", icmp(8), proto=1)))
    if linktype in (L.IEEE802_11, L.IEEE802_11_RADIO):
        frames = [wlan(bytes(12), fc0=0x80, fc1=0x03), wlan(b"", fc0=0xD4, fc1=0x08)]
        out += frames if linktype == L.IEEE802_11 else [radiotap(f, flags=0) for f in frames]
    return out


@pytest.mark.parametrize("linktype", BYTE_LINKS, ids=lambda lt: lt.name)
def test_byte_reads_the_link_layer_header(linktype: LinkType) -> None:
    check(BYTE_EXPRS, [linktype], _byte_frames)


@pytest.mark.parametrize("linktype", BYTE_LINKS, ids=lambda lt: lt.name)
def test_byte_and_or_test_the_link_layer_byte(linktype: LinkType) -> None:
    """``byte N & M`` is true when the link-layer header's byte N (after a radiotap header)
    has a bit of M set, ``byte N | M`` when it or M is non-zero; a frame without that byte
    matches neither (libpcap 1.10 loses the load, so the rule is written out here)."""
    frames = cuts(_byte_frames(linktype))
    radio = linktype == L.IEEE802_11_RADIO
    pairs = [(0, 0x08), (0, 0x04), (1, 0x01), (1, 0x02), (2, 0xFF), (12, 0x08), (13, 0x80), (1, 0)]
    for n, m in pairs:
        for op in "&|":
            expr = f"byte {n} {op} {m}"
            matcher = parse_filter(expr, linktype)
            assert matcher is not None
            program = [(i.code, i.jt, i.jf, i.k) for i in compile_bpf(expr, linktype)]
            want = []
            for frame in frames:
                start = int.from_bytes(frame[2:4], "little") if radio else 0
                if (radio and len(frame) < 4) or len(frame) <= start + n:
                    want.append(False)
                else:
                    byte = frame[start + n]
                    want.append(byte & m != 0 if op == "&" else byte | m != 0)
            assert [matcher.match(f) for f in frames] == want, expr
            assert run_program(program, frames) == want, expr


# -- refusals: where in the expression, and what they name -----------------------------------------

#: (expression, link type, the offset of the refused primitive, words its reason names).
REFUSED = [
    ("ip and mpls", L.LINUX_SLL, 7, ["'mpls'", "LINUX_SLL"]),
    ("tcp or mpls 5", L.PPP_HDLC, 7, ["'mpls'", "PPP_HDLC"]),
    ("geneve and mpls", L.ETHERNET, 11, ["'mpls'", "'geneve'"]),
    ("mpls and vlan", L.ETHERNET, 9, ["'vlan'", "'mpls'"]),
    ("mpls and arp", L.ETHERNET, 9, ["'mpls'", "IPv4"]),
    ("tcp and llc", L.LINUX_SLL, 8, ["'llc'", "LINUX_SLL"]),
    ("udp and llc i", L.RAW, 8, ["'llc'", "RAW"]),
    ("geneve and llc", L.ETHERNET, 11, ["'llc'", "'geneve'"]),
    ("geneve 5 and llc u", L.RAW, 13, ["'llc'", "'geneve'"]),
    ("tcp or broadcast", L.RAW, 7, ["RAW", "broadcast"]),
    ("ip and multicast", L.LINUX_SLL, 7, ["LINUX_SLL", "multicast"]),
    ("geneve and broadcast", L.ETHERNET, 11, ["broadcast", "'geneve'"]),
    ("ip and ether host 1:2:3:4:5:6", L.RAW, 7, ["Ethernet", "RAW"]),
    ("geneve and ether src 1:2:3:4:5:6", L.ETHERNET, 11, ["'ether host'", "'geneve'"]),
    ("not pppoes", L.NFLOG, 4, ["pppoes", "NFLOG"]),
    ("(pppoed)", L.NFLOG, 1, ["pppoed", "NFLOG"]),
    ("tcp and type data", L.ETHERNET, 8, ["802.11", "ETHERNET"]),
    ("tcp and wlan addr1 1:2:3:4:5:6", L.LINUX_SLL, 8, ["802.11", "LINUX_SLL"]),
    ("udp or dir tods", L.RAW, 7, ["802.11", "RAW"]),
    ("tcp and wlan host 1:2:3:4:5:6", L.RAW, 8, ["802.11", "RAW"]),
    ("ip and protochain 6", L.IEEE802_11, 7, ["'protochain'", "IEEE802_11"]),
    # NFLOG has no protocol field: each primitive testing one is refused where it stands.
    ("not decnet host 1.2", L.NFLOG, 4, ["NFLOG"]),
    ("not geneve", L.NFLOG, 4, ["NFLOG"]),
    ("not isis", L.NFLOG, 4, ["NFLOG"]),
    ("not l1", L.NFLOG, 4, ["NFLOG"]),
    ("not clnp", L.NFLOG, 4, ["NFLOG"]),
    ("not protochain 6", L.NFLOG, 4, ["NFLOG"]),
    ("not tcp", L.NFLOG, 4, ["NFLOG"]),
    ("not icmp", L.NFLOG, 4, ["NFLOG"]),
    ("not icmp6", L.NFLOG, 4, ["NFLOG"]),
    ("not proto 47", L.NFLOG, 4, ["NFLOG"]),
    ("not ip6 proto 47", L.NFLOG, 4, ["NFLOG"]),
    ("not ip multicast", L.NFLOG, 4, ["NFLOG"]),
    ("not ip broadcast", L.NFLOG, 4, ["NFLOG"]),
    ("not ip6 multicast", L.NFLOG, 4, ["NFLOG"]),
]


@pytest.mark.parametrize(("expr", "linktype", "offset", "names"), REFUSED)
def test_refusals_point_at_the_primitive(
    expr: str, linktype: LinkType, offset: int, names: list[str]
) -> None:
    """Both back-ends refuse with the offset of the primitive they cannot compile (its first
    character, counted by hand), and the reason names it and what stands in the way."""
    for compile_ in (parse_filter, compile_bpf):
        with pytest.raises(FilterCompileError) as info:
            compile_(expr, linktype)
        assert info.value.offset == offset, (compile_, info.value)
        assert info.value.expr == expr
        for name in names:
            assert name in info.value.reason, (compile_, name, info.value.reason)
        if "'geneve'" in names:
            assert TUNNEL_READS["geneve"] in info.value.reason


#: (expression, link type, the whole reason): what a user reads under the caret.
REASONS = [
    ("ip and mpls", L.LINUX_SLL, "'mpls' is not supported on LINUX_SLL"),
    ("tcp and llc", L.LINUX_SLL, "'llc' is not supported on LINUX_SLL"),
    ("not pppoes", L.NFLOG, "'pppoes' is not supported on NFLOG"),
    ("tcp or broadcast", L.RAW, "RAW has no link-layer broadcast"),
    ("mpls and vlan", L.ETHERNET, "'vlan' cannot follow 'mpls' (libpcap refuses this too)"),
    ("ip and vlan 5", L.RAW, "'vlan' needs Ethernet frames, not RAW"),
    ("mpls and arp", L.ETHERNET, "only IPv4 and IPv6 can follow 'mpls'"),
    (
        "ip and ether host 1:2:3:4:5:6",
        L.RAW,
        "Ethernet addresses need Ethernet or 802.11 frames, not RAW",
    ),
    ("tcp and type data", L.ETHERNET, "802.11 primitives need 802.11 frames, not ETHERNET"),
    (
        "ip and protochain 6",
        L.IEEE802_11,
        "'protochain' is not supported with variable length headers (IEEE802_11)",
    ),
    (
        "not tcp",
        L.NFLOG,
        "NFLOG frames cannot be filtered by protocol (their payload is in a TLV; libpcap "
        "refuses this too)",
    ),
    (
        "geneve and llc",
        L.ETHERNET,
        "'llc' is not supported after 'geneve': only the EtherType and what follows it are read",
    ),
]


@pytest.mark.parametrize(("expr", "linktype", "reason"), REASONS)
def test_refusals_say_it_in_full(expr: str, linktype: LinkType, reason: str) -> None:
    """The whole reason of each refusal, word for word, from both back-ends.

    Mutation guarded: a refusal's text changed (mutmut's "XX...XX" around the message of
    ``mpls_label``, ``llc``, ``ether_host``, ``other`` and the ``vlan``-after-``mpls`` one),
    which the word checks of test_refusals_point_at_the_primitive let through."""
    for compile_ in (parse_filter, compile_bpf):
        with pytest.raises(FilterCompileError) as info:
            compile_(expr, linktype)
        assert info.value.reason == reason


def test_what_only_a_live_capture_can_say_in_full() -> None:
    """The matcher's refusal of kernel metadata, word for word, naming the primitive and the
    link type (``kernel``'s message)."""
    for expr, word in [("tcp and inbound", "inbound"), ("ip or ifindex 3", "ifindex")]:
        for linktype in (L.ETHERNET, L.RAW):
            with pytest.raises(FilterCompileError) as info:
                parse_filter(expr, linktype)
            assert info.value.reason == (
                f"{word} is not in {linktype.name} frames: only a live capture's kernel filter "
                "can test it (or a Linux cooked capture)"
            )


def test_link_types_without_filters_say_it_in_full() -> None:
    """The refusal of a link type filters do not compile for, word for word."""
    with pytest.raises(FilterCompileError) as info:
        parse_filter("ip", L(147))
    assert info.value.reason == (
        "filters are not supported on link type LINKTYPE_147 (147); they compile for "
        + ", ".join(sorted(lt.name for lt in FILTER_LINKTYPES))
    )


def test_refusals_after_a_tunnel_say_what_is_read_inside() -> None:
    """A refusal raised for a reason of its own after ``geneve`` (here: protochain needs a
    fixed link-layer length) keeps its reason and adds what is read inside the tunnel."""
    expr = "geneve and protochain 6"
    for compile_ in (parse_filter, compile_bpf):
        with pytest.raises(FilterCompileError) as info:
            compile_(expr, L.ETHERNET)
        reason = info.value.reason
        assert info.value.offset == 11
        assert reason.startswith("'protochain' is not supported with variable length headers")
        assert reason.endswith(f" (after 'geneve' {TUNNEL_READS['geneve']})")
        assert reason.count("geneve") == 1


def test_what_only_a_live_capture_can_test() -> None:
    """The matcher reads frames only: ``inbound``, ``outbound`` and ``ifindex`` on a link
    type whose frames do not hold them are refused there, at their offset, naming the link
    type; a program for a live socket reads them from the kernel's metadata (SKF_AD_OFF)."""
    for expr, offset, word in [
        ("tcp and inbound", 8, "inbound"),
        ("ip or ifindex 3", 6, "ifindex"),
    ]:
        for linktype in (L.ETHERNET, L.RAW):
            with pytest.raises(FilterCompileError) as info:
                parse_filter(expr, linktype)
            assert info.value.offset == offset
            assert word in info.value.reason and linktype.name in info.value.reason
            assert any(i.k >= 0xFFFFF000 for i in compile_bpf(expr, linktype))
    for linktype in (L.LINUX_SLL, L.LINUX_SLL2):
        assert parse_filter("outbound", linktype) is not None
    # linux/if_packet.h: PACKET_OUTGOING is 4; the kernel's packet type is a halfword load.
    program = [(i.code, i.k) for i in compile_bpf("outbound", L.ETHERNET)]
    load = program.index((0x28, 0xFFFFF000 + 4))  # ldh [SKF_AD_OFF + SKF_AD_PKTTYPE]
    assert program[load + 1] == (0x15, 4)  # jeq #4


# -- direction, interface index, 802.11 frame control --------------------------------------------

META_EXPRS = ["inbound", "outbound", "not outbound", "ifindex 7", "ifindex 1", "ifindex 0x01020304"]
META_EXPRS += ["ifindex 0", "outbound and ip", "inbound and ip6"]


def _meta_frames(linktype: LinkType) -> list[bytes]:
    if linktype == L.LINUX_SLL:
        return [sll(p, pkttype=k) for p in (IP4, IP6) for k in range(6)]
    if linktype == L.LINUX_SLL2:
        out = [sll2(IP4, pkttype=k, ifindex=i) for k in range(6) for i in (1, 7)]
        return out + [sll2(IP6, pkttype=4, ifindex=i) for i in (0, 0x01020304, 0x04030201)]
    return [bytes([d]) + bytes(15) + IP4 for d in (0, 1, 2, 0x81)]  # SLIP: the direction byte


@pytest.mark.parametrize("linktype", [L.LINUX_SLL, L.LINUX_SLL2, L.SLIP], ids=lambda lt: lt.name)
def test_direction_and_interface_index(linktype: LinkType) -> None:
    exprs = (
        META_EXPRS if linktype == L.LINUX_SLL2 else [e for e in META_EXPRS if "ifindex" not in e]
    )
    check(exprs, [linktype], _meta_frames)


WLAN_EXPRS = ["type data", "type mgt", "type ctl", "subtype beacon", "subtype ack"]
WLAN_EXPRS += ["type data subtype qos-data", "wlan type mgt subtype probe-req", "dir tods"]
WLAN_EXPRS += ["dir fromds", "dir nods", "dir dstods", "wlan dir 3", "type 8"]


def _wlan_frames(linktype: LinkType) -> list[bytes]:
    frames = [
        wlan(snap(0x0800) + IP4, fc0=fc0, fc1=fc1) for fc0 in (0x08, 0x88) for fc1 in range(4)
    ]
    frames += [wlan(bytes(12), fc0=fc0, fc1=0) for fc0 in (0x80, 0x40, 0x50, 0x00)]
    frames += [wlan(b"", fc0=fc0, fc1=0x10) for fc0 in (0xD4, 0xC4, 0xB4)]
    frames += [wlan(b"", fc0=0xFC, fc1=0xF3)]
    return frames if linktype == L.IEEE802_11 else [radiotap(f, flags=0) for f in frames]


def test_802_11_frame_control() -> None:
    check(WLAN_EXPRS, [L.IEEE802_11], _wlan_frames)


def test_link_types_without_filters_are_refused_at_the_start() -> None:
    """A link type filters do not compile for is refused by both back-ends at offset 0, with
    the link types they do compile for named."""
    for linktype in set(L) - set(FILTER_LINKTYPES):
        for compile_ in (parse_filter, compile_bpf):
            with pytest.raises(FilterCompileError) as info:
                compile_("ip or tcp", linktype)
            assert info.value.offset == 0 and info.value.expr == "ip or tcp"
            assert linktype.name in info.value.reason
            assert all(lt.name in info.value.reason for lt in FILTER_LINKTYPES)


def test_the_first_vlan_of_a_kernel_program_reads_the_metadata() -> None:
    """With ``kernel_vlan`` the first ``vlan`` reads the tag the kernel took out of the frame
    (SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TAG), a second one the frame; each matches as the
    Linux kernel would, run by the test interpreter with the tag in the metadata."""
    program = [(i.code, i.jt, i.jf, i.k) for i in compile_bpf("vlan 100", kernel_vlan=True)]
    assert {k for _, _, _, k in program} >= {bpfvm.VLAN_TAG_PRESENT, bpfvm.VLAN_TAG}
    inner = bytes(ether(IP4, ethertype=0x0800))
    assert bpfvm.run(program, inner, vlan_tci=100) is True
    assert bpfvm.run(program, inner, vlan_tci=101) is False
    assert bpfvm.run(program, inner) is False
    two = [(i.code, i.jt, i.jf, i.k) for i in compile_bpf("vlan 100 and vlan 7", kernel_vlan=True)]
    tagged = bytes(ether(IP4, vlans=(7,)))
    assert bpfvm.run(two, tagged, vlan_tci=100) is True
    assert bpfvm.run(two, tagged, vlan_tci=7) is False
    assert bpfvm.run(two, inner, vlan_tci=100) is False


PROTOCHAIN_EXPRS = ["protochain 6", "protochain 17", "ip protochain 6", "ip6 protochain 6"]
PROTOCHAIN_EXPRS += ["ip6 protochain 17", "ip protochain 17", "protochain 44", "not protochain 6"]


def _chain_frames(linktype: LinkType) -> list[bytes]:
    packets = [IP4, IP4_UDP, IP6, IP6_FRAG, IP6_FRAG_UDP]
    return [f for p in packets for f in carry(linktype, 0x86DD if p[0] >> 4 == 6 else 0x0800, p)]


@pytest.mark.parametrize("linktype", [L.ETHERNET, L.RAW, L.LINUX_SLL], ids=lambda lt: lt.name)
def test_protochain_on_ipv4_and_ipv6_header_chains(linktype: LinkType) -> None:
    """``protochain`` walks the IPv4 and IPv6 header chains as libpcap does (the matcher
    only: its program loops backwards, which a kernel program cannot)."""
    for expr in PROTOCHAIN_EXPRS:
        with pytest.raises(FilterCompileError):
            compile_bpf(expr, linktype)
        problems = differences(expr, linktype, _chain_frames(linktype), bpf_too=False)
        assert not problems, problems[:3]


# -- VLAN tags on 802.11 ---------------------------------------------------------------------------


def _wlan_vlan_frames(linktype: LinkType) -> list[bytes]:
    """802.11 data frames whose SNAP header says 802.1Q, with one and with two tags (VIDs 5
    then 7) before IPv4, IPv6 or ARP."""
    frames: list[bytes] = []
    for inner, body in ((0x0800, IP4), (0x86DD, IP6), (0x0806, ARP)):
        one = struct.pack("!HH", 5, inner) + body
        two = struct.pack("!HHHH", 5, 0x8100, 7, inner) + body
        frames += carry(linktype, 0x8100, one) + carry(linktype, 0x8100, two)
    return frames


#: Each ``vlan`` moves what follows it 4 bytes further; a second one reads the second tag
#: (``vlan and vlan and ip`` tests the type field 8 bytes past the SNAP header: with the
#: offset set to 4 instead of moved by 4, it reads the inner 0x8100 and never matches).
WLAN_VLANS = [
    "vlan",
    "vlan 5",
    "vlan 7",
    "vlan and ip",
    "vlan and vlan",
    "vlan 5 and vlan 7",
    "vlan 5 and vlan 5",
    "vlan and vlan and ip",
    "vlan and vlan 7 and ip6",
    "vlan and vlan and arp",
    "vlan and vlan and tcp port 80",
]


@pytest.mark.parametrize("linktype", [L.IEEE802_11, L.IEEE802_11_RADIO], ids=lambda t: t.name)
def test_vlan_tags_on_802_11_one_after_the_other(linktype: LinkType) -> None:
    check(WLAN_VLANS, [linktype], _wlan_vlan_frames)


# -- IP protocol numbers over IPv6, with and without a fragment header -----------------------------


def _ip6_next_header_frames(linktype: LinkType) -> list[bytes]:
    """IPv6 packets whose next header is ICMP (1), IGMP (2), TCP, UDP or ICMPv6, directly and
    after a fragment header, and the same protocols over IPv4."""
    body = bytes(8)
    packets = [bytes(ipv4("10.0.0.1", "10.0.0.2", body, proto=p)) for p in (1, 2, 6, 17)]
    for nh in (1, 2, 6, 17, 58, 44):
        packets.append(bytes(ipv6("2001:db8::1", "2001:db8::2", body, nh=nh)))
        packets.append(
            bytes(ipv6("2001:db8::1", "2001:db8::2", body, nh=nh, ext=((44, bytes(6)),)))
        )
    return [f for p in packets for f in carry(linktype, 0x86DD if p[0] >> 4 == 6 else 0x0800, p)]


#: ``icmp`` and ``igmp`` are IPv4 only in libpcap (an IPv6 packet whose next header is 1 or 2
#: is neither); ``tcp``, ``udp``, ``proto N`` and ``ip6 proto N`` look one header further past
#: a fragment header, and ``ip proto N`` never looks at IPv6.
IP6_NH_EXPRS = ["icmp", "igmp", "not icmp", "icmp or igmp", "tcp", "udp", "icmp6", "proto 1"]
IP6_NH_EXPRS += ["proto 2", "ip6 proto 1", "ip6 proto 2", "ip6 proto 44", "ip proto 1"]
IP6_NH_EXPRS += ["ip6 proto 58", "ip proto 6", "ip6 and igmp", "sctp", "ip6 proto 6"]


@pytest.mark.parametrize("linktype", [L.ETHERNET, L.RAW, L.IEEE802_11], ids=lambda t: t.name)
def test_ip_protocols_over_ipv6_and_its_fragment_header(linktype: LinkType) -> None:
    """Mutation guarded: ``icmp``/``igmp`` also matching IPv6 (their branch of
    ``proto_abbrev`` skipped), and the fragment header's branch of ``ip6_proto`` dropped or
    reading the wrong byte (an IPv6 packet with a fragment header before TCP is ``tcp``)."""
    check(IP6_NH_EXPRS, [linktype], _ip6_next_header_frames)


KERNEL_EXPRS = ["ifindex 7", "ifindex 0x01020304", "inbound", "outbound", "not ifindex 1"]
KERNEL_EXPRS += ["outbound and ifindex 3", "inbound or ifindex 9", "ip and ifindex 2"]
KERNEL_EXPRS += ["ifindex 2 and not inbound", "not (outbound or ifindex 7)"]


@pytest.mark.parametrize("linktype", [L.ETHERNET, L.RAW, L.IEEE802_11], ids=lambda t: t.name)
def test_kernel_metadata_programs_answer_as_libpcaps(linktype: LinkType) -> None:
    """A program for a live socket reads the direction and the interface index from the
    kernel's metadata (SKF_AD_PKTTYPE, SKF_AD_IFINDEX): run with every packet type and a
    range of interface indexes, on an IPv4 and an IPv6 frame, it answers as libpcap's own
    program for the same expression does.

    Mutation guarded: the interface index compared with another operator or value, or
    loaded from another offset in ``other``; the direction's packet type (test_kernel.py,
    which runs these on a socket, is not in the mutation group)."""
    frames = carry(linktype, 0x0800, IP4)[:1] + carry(linktype, 0x86DD, IP6)[:1]
    metadata = [(t, i) for t in range(5) for i in (0, 1, 2, 3, 7, 9, 0x01020304, 0x04030201)]
    for expr in KERNEL_EXPRS:
        theirs = Compiled(expr, DLT.get(linktype, int(linktype)))
        try:
            want = theirs.instructions()
        finally:
            theirs.close()
        ours = [(i.code, i.jt, i.jf, i.k) for i in compile_bpf(expr, linktype)]
        verdicts = [
            [bpfvm.run(p, f, pkttype=t, ifindex=i) for f in frames for t, i in metadata]
            for p in (ours, want)
        ]
        assert verdicts[0] == verdicts[1], expr
        assert any(verdicts[1]) and not all(verdicts[1]), expr
