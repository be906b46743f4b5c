"""The grammar: structure, precedence, qualifiers, normalization, every error and its offset."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc._packet import LinkType
from capsvc.filter import (
    FILTER_LINKTYPES,
    MAX_DEPTH,
    MAX_LENGTH,
    FilterCompileError,
    FilterSyntaxError,
    compile_bpf,
    parse,
    parse_filter,
    read_as,
)
from capsvc.filter._ast import (
    And,
    BinOp,
    Cast,
    Compare,
    EtherHost,
    EtherProto,
    Geneve,
    Host,
    IpProto,
    Length,
    Load,
    Mpls,
    Net,
    Not,
    Num,
    Or,
    Port,
    PortRange,
    Proto,
    ProtoChain,
    Vlan,
    Vxlan,
    Way,
    WlanDir,
    WlanHost,
    WlanType,
)
from capsvc.filter._parser import nesting

A = ipaddress.ip_address


@pytest.mark.parametrize(
    ("expr", "tree"),
    [
        ("tcp", Proto("tcp")),
        ("tcp port 443", Port(443, "", "tcp")),
        ("tcp and port 443", And(Proto("tcp"), Port(443))),
        ("tcp udp", And(Proto("tcp"), Proto("udp"))),  # juxtaposition is and
        ("tcp && udp", And(Proto("tcp"), Proto("udp"))),
        ("tcp || udp", Or(Proto("tcp"), Proto("udp"))),
        # and/or: equal precedence, from the left, as in libpcap (and-tighter would nest right)
        ("ip or ip6 and tcp", And(Or(Proto("ip"), Proto("ip6")), Proto("tcp"))),
        ("tcp or udp and port 53", And(Or(Proto("tcp"), Proto("udp")), Port(53))),
        (
            "tcp and udp or ip and ip6",
            And(Or(And(Proto("tcp"), Proto("udp")), Proto("ip")), Proto("ip6")),
        ),
        ("not tcp or udp", Or(Not(Proto("tcp")), Proto("udp"))),
        ("tcp or (udp and port 53)", Or(Proto("tcp"), And(Proto("udp"), Port(53)))),
        ("(ip or ip6) and tcp", And(Or(Proto("ip"), Proto("ip6")), Proto("tcp"))),
        ("not tcp and udp", And(Not(Proto("tcp")), Proto("udp"))),
        ("not (tcp and udp)", Not(And(Proto("tcp"), Proto("udp")))),
        ("! ! tcp", Not(Not(Proto("tcp")))),
        ("(port 80)or(port 443)", Or(Port(80), Port(443))),
        ("TCP PORT 443", Port(443, "", "tcp")),
        ("Host 10.0.0.1", Host(A("10.0.0.1"))),
        ("10.0.0.1", Host(A("10.0.0.1"))),
        ("src 10.0.0.1", Host(A("10.0.0.1"), "src")),
        ("dst host ::1", Host(A("::1"), "dst")),
        ("src or dst host 10.0.0.1", Host(A("10.0.0.1"))),
        ("src and dst host 10.0.0.1", Host(A("10.0.0.1"), "src and dst")),
        ("dst and src port 22", Port(22, "src and dst")),
        ("host ::ffff:10.0.0.1", Host(A("::ffff:10.0.0.1"))),
        ("ip6 host ::ffff:1.2.3.4", Host(A("::ffff:1.2.3.4"), "", "ip6")),
        ("arp src host 10.0.0.2", Host(A("10.0.0.2"), "src", "arp")),
        ("net 10.0.0.0/8", Net(ipaddress.ip_network("10.0.0.0/8"))),
        ("net 10.0.0.0 mask 255.255.0.0", Net(ipaddress.ip_network("10.0.0.0/16"))),
        ("src net fe80::/10", Net(ipaddress.ip_network("fe80::/10"), "src")),
        ("net 10.0.0.1", Net(ipaddress.ip_network("10.0.0.1/32"))),
        ("portrange 10-20", PortRange(10, 20)),
        ("udp dst portrange 20-10", PortRange(10, 20, "dst", "udp")),
        ("port 80 or 443", Or(Port(80), Port(443))),
        ("tcp dst port 80 or 443", Or(Port(80, "dst", "tcp"), Port(443, "dst", "tcp"))),
        ("host 10.0.0.1 and not 10.0.0.2", And(Host(A("10.0.0.1")), Not(Host(A("10.0.0.2"))))),
        ("less 100", Compare(Length(), "<=", Num(100))),
        ("greater 100", Compare(Length(), ">=", Num(100))),
        ("len >= 0x64", Compare(Length(), ">=", Num(100))),
        ("len = 010", Compare(Length(), "==", Num(8))),
        ("length < 10", Compare(Length(), "<", Num(10))),
        ("port 0", Port(0)),
        ("port http", Port(80, "", "tcp")),  # the table lists http for TCP only
        ("port domain", Port(53)),  # TCP and UDP alike
        ("udp port domain", Port(53, "", "udp")),
        ("portrange ftp-data-ftp", PortRange(20, 21, "", "tcp")),
        ("udp portrange bootps-bootpc", PortRange(67, 68, "", "udp")),
        ("tcp portrange 25-smtp", PortRange(25, 25, "", "tcp")),
        ("portrange 53", PortRange(53, 53)),
        ("ip proto ospf", IpProto(89, "ip")),
        ("net 10", Net(ipaddress.ip_network("10.0.0.0/8"))),
        ("net 192.168", Net(ipaddress.ip_network("192.168.0.0/16"))),
        ("host 10.1", Net(ipaddress.ip_network("10.1.0.0/16"))),
        ("net 192.168 mask 255.255", Net(ipaddress.ip_network("192.168.0.0/16"))),
        ("net 172.17.89.30 / 32", Net(ipaddress.ip_network("172.17.89.30/32"))),
        ("host 0xc0a8aad3", Host(A("192.168.170.211"))),
        ("src 01200000002", Host(A("10.0.0.2"), "src")),
        ("host 3232279251", Host(A("192.168.170.211"))),
        ("host ::1/128", Host(A("::1"))),
        ("ether host ab.cd.ef.0.0.1", EtherHost(bytes.fromhex("abcdef000001"))),
        ("ether dst abcd.ef00.0003", EtherHost(bytes.fromhex("abcdef000003"), "dst")),
        ("ether src ab-cd-ef-00-00-02", EtherHost(bytes.fromhex("abcdef000002"), "src")),
        ("ether dst abcdef000003", EtherHost(bytes.fromhex("abcdef000003"), "dst")),
        ("host (10.0.0.1 or 10.0.0.2)", Or(Host(A("10.0.0.1")), Host(A("10.0.0.2")))),
        ("broadcast", Cast("broadcast")),
        ("ip6 multicast", Cast("multicast", "ip6")),
        ("inbound", Way(False)),
        ("mpls 100 and mpls", And(Mpls(100), Mpls(None))),
        ("atalk", EtherProto(0x809B)),
        ("ah", IpProto(51)),
        ("wlan addr2 12:34:56:78:9a:bc", WlanHost(bytes.fromhex("123456789abc"), "addr2")),
        ("type mgt subtype beacon", WlanType(0x80, 0xFC)),
        ("dir fromds", WlanDir(2)),
        ("proto 6", IpProto(6)),
        ("proto tcp", IpProto(6)),
        ("ip proto \\udp", IpProto(17, "ip")),
        ("ip6 proto 58", IpProto(58, "ip6")),
        ("ip protochain 6", ProtoChain(6, "ip")),
        ("ip6 protochain \\udp", ProtoChain(17, "ip6")),
        ("protochain 51 or 6", Or(ProtoChain(51), ProtoChain(6))),
        ("geneve", Geneve()),
        ("geneve 12345 and ip", And(Geneve(12345), Proto("ip"))),
        ("vxlan", Vxlan()),
        ("vxlan 12345 and ip", And(Vxlan(12345), Proto("ip"))),
        ("VXLAN 0xffffff", Vxlan(0xFFFFFF)),
        ("ether proto arp", EtherProto(0x806)),
        ("ether proto 0x88cc", EtherProto(0x88CC)),
        ("ether host 02:00:00:00:00:0a", EtherHost(bytes.fromhex("02000000000a"))),
        ("ether src 2:0:0:0:0:b", EtherHost(bytes.fromhex("02000000000b"), "src")),
        ("vlan", Vlan(None)),
        ("vlan 100", Vlan(100)),
        ("icmp[icmptype] == icmp-echo", Compare(Load("icmp", Num(0)), "==", Num(8))),
        (
            "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
            Compare(BinOp("&", Load("tcp", Num(13)), BinOp("|", Num(2), Num(16))), "!=", Num(0)),
        ),
        ("ip[2:2] - 20 > 40", Compare(BinOp("-", Load("ip", Num(2), 2), Num(20)), ">", Num(40))),
        ("1 + 2 * 3 = 7", Compare(BinOp("+", Num(1), BinOp("*", Num(2), Num(3))), "==", Num(7))),
        ("(ip[0] & 0xf) > 5", Compare(BinOp("&", Load("ip", Num(0)), Num(15)), ">", Num(5))),
        (
            "tcp[tcp[12] >> 4] = 1",
            Compare(Load("tcp", BinOp(">>", Load("tcp", Num(12)), Num(4))), "==", Num(1)),
        ),
    ],
)
def test_parses_to(expr: str, tree: object) -> None:
    assert parse(expr) == tree


@pytest.mark.parametrize("expr", ["", "   ", "\t\n"])
def test_empty_expression_matches_everything(expr: str) -> None:
    assert parse(expr) is None
    assert parse_filter(expr) is None


@pytest.mark.parametrize(
    "expr",
    [
        "tcp port 443",
        "host 10.0.0.1 and (port 80 or port 443) and not port 22",
        "not (tcp or udp) and ip",
        "ip or (ip6 or arp)",
        "vlan 10 and vlan",
        "ether dst ff:ff:ff:ff:ff:ff",
        "src and dst net 2001:db8::/32",
        "tcp[tcpflags] & (tcp-syn | tcp-ack) == tcp-syn",
        "ip[(ip[0] & 3) + 1:2] >= 7",
        "ip[0] - (ip[1] - ip[2]) = 1",
        "len * 2 << 1 > 10",
        "host ::ffff:10.0.0.1",
        "not not not tcp",
        "ip6 proto 44 or proto 6",
        "udp portrange 1-1024 and less 60",
        "ether proto 0x0806 or ether src host 00:11:22:33:44:55",
        "not (len > 100)",
        # A negated operand on the left of "%" or "^" keeps its parentheses: "-a % b" is
        # "-(a % b)" (printing "(-ip[0]) % 3" as "-ip[0] % 3" fails here).
        "(-ip[0]) % 3 = 1",
        "(-ip[0]) ^ 3 = 1",
        "ip[0] - (-ip[1]) % 2 = 0",
        "- ip[0] % 3 = 1",
    ],
)
def test_str_round_trips(expr: str) -> None:
    node = parse(expr)
    assert node is not None
    again = parse(str(node))
    assert again == node
    assert str(again) == str(node)


ERRORS = [
    # (expression, offset, words of the message)
    ("foo", 0, "unknown keyword 'foo'"),
    ("tcp and bar", 8, "unknown keyword 'bar'"),
    ("host", 4, "missing address"),
    ("host 10.0.0.300", 5, "invalid address"),
    ("host example.com", 5, "not resolved"),
    ("src host", 8, "missing address"),
    ("port", 4, "missing port"),
    ("port 65536", 5, "outside 0-65535"),
    ("tcp port 70000", 9, "outside 0-65535"),
    ("portrange 1-70000", 12, "outside 0-65535"),
    ("port nosuchservice", 5, "unknown port"),
    ("udp port ssh", 9, "port 'ssh' is tcp"),
    ("host 10.0.0.0/8", 13, "mask syntax for networks only"),
    ("net 10.1/8", 4, "non-network bits"),
    ("ether host nosuchhost", 11, "host names are not resolved"),
    ("host 02:00:00:00:00:0a", 5, "needs 'ether'"),
    ("net 10.0.0.0/33", 13, "invalid prefix length"),
    ("net 10.0.0.1/8", 4, "non-network bits"),
    ("net fe80::1/10", 4, "non-network bits"),
    ("net 10.0.0.0 mask 255.0.255.0", 18, "invalid netmask"),
    ("tcp and", 7, "unexpected end"),
    ("not", 3, "unexpected end"),
    ("(tcp", 0, "unclosed '('"),
    ("((tcp) or udp", 0, "unclosed '('"),
    ("tcp)", 3, "unmatched ')'"),
    (")", 0, "unmatched ')'"),
    ("()", 1, "unmatched ')'"),
    ("tcp port 80 443", 12, "unexpected '443'"),
    ("tcp 80", 4, "unexpected '80'"),
    ("80", 0, "unexpected number"),
    ("ip6 host 10.0.0.1", 9, "IPv4 address used with 'ip6'"),
    ("arp host ::1", 9, "IPv6 address used with 'arp'"),
    ("tcp host 10.0.0.1", 0, "'tcp' cannot qualify 'host'"),
    ("ip port 80", 0, "'ip' cannot qualify 'port'"),
    ("ether host 02:00:00:00:00", 11, "invalid MAC"),
    ("ether", 5, "after 'ether'"),
    ("vlan 4096", 5, "outside 0-4095"),
    ("proto 256", 6, "outside 0-255"),
    ("ip proto nosuch", 9, "protocol number or name"),
    ("ip[0:3] = 1", 5, "size must be 1, 2 or 4"),
    ("ip[0 = 1", 5, "expected ']'"),
    ("ip[0] / 0 = 1", 8, "division by zero"),
    ("ip[0] << 32 = 1", 9, "shift by more than 31"),
    ("ip[0] 1", 6, "expected a comparison"),
    ("len >", 5, "expected a number"),
    ("tcp and or udp", 8, "expected a primitive before 'or'"),
    ("gateway 10.0.0.1", 0, "unsupported keyword"),
    ("tcp protochain 6", 4, "'tcp' cannot qualify 'protochain'"),
    ("ip protochain", 13, "missing protocol"),
    ("ip protochain 256", 14, "outside 0-255"),
    ("geneve 16777216", 7, "outside 0-16777215"),
    ("vxlan 16777216", 6, "VXLAN VNI 16777216 outside 0-16777215"),
    ("host 10.0.0.1 $", 14, "unexpected character"),
    ("len = 99999999999", 6, "32 bits"),
    ("port 08", 5, "expected a port number"),
]


@pytest.mark.parametrize(("expr", "offset", "words"), ERRORS)
def test_errors_point_at_the_culprit(expr: str, offset: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse(expr)
    err = info.value
    assert words in err.reason
    assert err.offset == offset
    assert err.expr == expr
    lines = str(err).splitlines()
    assert lines[0] == err.reason
    assert lines[1] == "  " + expr
    assert lines[2] == "  " + " " * offset + "^"


def test_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown keyword"):
        parse_filter("bogus")


@pytest.mark.parametrize(
    ("expr", "linktype", "offset"),
    [
        ("vlan", LinkType.RAW, 0),
        ("tcp and vlan 5", LinkType.LINUX_SLL, 8),
        ("ether host 02:00:00:00:00:0a", LinkType.LINUX_SLL2, 0),
        ("ip or ether src 02:00:00:00:00:0a", LinkType.NULL, 6),
    ],
)
def test_what_a_link_type_cannot_express(expr: str, linktype: LinkType, offset: int) -> None:
    assert parse(expr) is not None
    with pytest.raises(FilterCompileError) as info:
        parse_filter(expr, linktype)
    assert info.value.offset == offset


@pytest.mark.parametrize(
    "expr",
    [
        "(" * 1000 + "tcp" + ")" * 1000,
        "not " * 1000 + "tcp",
        "ip[0]" + " + 1" * 500 + " = 1",  # observed: a RecursionError traceback
        " ".join(f"tcp {'and' if i % 2 else 'or'}" for i in range(200)) + " udp",
        "ip[" * 100 + "0" + "]" * 100 + " = 1",
    ],
    ids=["parentheses", "not", "arithmetic", "and-or", "loads"],
)
def test_nesting_is_bounded_in_every_back_end(expr: str) -> None:
    """Deep expressions are a FilterSyntaxError everywhere, never a RecursionError."""
    for compile_it in (parse, parse_filter, compile_bpf):
        with pytest.raises(FilterSyntaxError, match="nested too deeply"):
            compile_it(expr)


def test_the_deepest_allowed_expressions_compile_everywhere() -> None:
    """At MAX_DEPTH every back-end still compiles (the limit keeps them all in range)."""
    half = MAX_DEPTH // 2 - 2
    for expr in (
        "(" * (MAX_DEPTH - 1) + "tcp" + ")" * (MAX_DEPTH - 1),
        "ip[0]" + " + 1" * (MAX_DEPTH - 3) + " = 1",
        " ".join(f"tcp {'and' if i % 2 else 'or'}" for i in range(MAX_DEPTH - 2)) + " udp",
        "not (" * half + "ip[0] + 1" + " + 1" * half + " = 1" + ")" * half,
    ):
        node = parse(expr)
        assert node is not None
        assert expr.startswith("(") or MAX_DEPTH - 4 <= nesting(node)[0] <= MAX_DEPTH
        assert parse(str(node)) == node
        matcher = parse_filter(expr, LinkType.ETHERNET)
        assert matcher is not None
        matcher.match(b"\0" * 64)
        assert compile_bpf(expr)


def test_the_length_is_bounded() -> None:
    """64 KiB by default, refused with a syntax error; the service may choose its own."""
    expr = " or ".join(f"(host 10.{i // 250}.{i % 250}.1 and port {1000 + i})" for i in
                       range(2000))  # fmt: skip
    assert len(expr) > MAX_LENGTH
    for compile_it in (parse, parse_filter, compile_bpf):
        with pytest.raises(FilterSyntaxError, match="longer than the limit of 65536"):
            compile_it(expr)
    assert parse(expr, max_length=0) is not None
    assert parse_filter(expr, LinkType.ETHERNET, max_length=len(expr)) is not None
    with pytest.raises(FilterSyntaxError, match="limit of 10"):
        parse("tcp port 443", max_length=10)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_only_filter_errors_escape_on_any_text(text: str) -> None:
    # A well-formed primitive the link type cannot express ("mpls" on raw IP) is a
    # FilterCompileError; anything else malformed a FilterSyntaxError; never another exception.
    for linktype in (LinkType.RAW, LinkType.ETHERNET):
        try:
            parse_filter(text, linktype)
        except (FilterSyntaxError, FilterCompileError) as exc:
            assert 0 <= exc.offset <= len(text)


_WORDS = st.sampled_from(
    [
        "tcp",
        "udp",
        "ip",
        "ip6",
        "host",
        "net",
        "port",
        "portrange",
        "src",
        "dst",
        "and",
        "or",
        "not",
        "(",
        ")",
        "!",
        "&&",
        "||",
        "10.0.0.1",
        "::1",
        "10.0.0.0/8",
        "80",
        "1-2",
        "vlan",
        "ether",
        "proto",
        "[",
        "]",
        ":",
        "2",
        "&",
        "|",
        "==",
        "!=",
        ">",
        "len",
        "less",
        "0x10",
        "icmp",
        "tcpflags",
        "tcp-syn",
        "-",
        "/",
        "<<",
        "arp",
        "02:00:00:00:00:0a",
        "mask",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_WORDS, max_size=12))
def test_only_syntax_errors_escape_on_keyword_soup(words: list[str]) -> None:
    text = " ".join(words)
    try:
        node = parse(text)
    except FilterSyntaxError as exc:
        assert 0 <= exc.offset <= len(text)
        return
    if node is not None:
        assert parse(str(node)) == node
        for linktype in sorted(FILTER_LINKTYPES):
            with contextlib.suppress(FilterCompileError):
                parse_filter(text, linktype)


@pytest.mark.parametrize(
    ("expr", "grouping"),
    [
        ("tcp or udp and port 53", "(tcp or udp) and port 53"),
        ("tcp and port 80 or udp", "(tcp and port 80) or udp"),
        ("tcp or udp", None),
        ("(tcp or udp) and port 53", None),
        ("tcp or (udp and port 53)", None),
        ("not (tcp and udp) or ip", None),
        ("", None),
    ],
)
def test_read_as_shows_the_grouping_of_a_mix(expr: str, grouping: str | None) -> None:
    assert read_as(expr) == grouping
