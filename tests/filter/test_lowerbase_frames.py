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
there rejecting is accepted too. ``byte N & M`` / ``byte N | M``, which libpcap 1.10 compiles
wrongly, are held to the rule written out in the test.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import _bpfvm as bpfvm
import pytest
from _helpers import MAC_A, MAC_B, ether, ipv4, ipv6, mac, sll, sll2, tcp, udp
from _oracle import Compiled, OracleError, run_program

from capsvc._packet import LinkType
from capsvc.filter import FilterCompileError, compile_bpf, parse_filter

L = LinkType
#: pcap_open_dead wants DLT_ values; they equal the LINKTYPE_ ones except for raw IP.
DLT = {L.RAW: 12}

IP4 = bytes(ipv4("10.0.0.1", "10.0.0.2", tcp(1000, 80)))
IP4_UDP = bytes(ipv4("10.0.0.3", "255.255.255.255", udp(68, 67, b"boot")))
IP6 = bytes(ipv6("2001:db8::1", "2001:db8::2", udp(53, 53, b"dns")))
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
    expr: str, linktype: LinkType, frames: Sequence[bytes], *, via: LinkType | None = None
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
        except FilterCompileError:
            with pytest.raises(FilterCompileError):
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
        program = compile_bpf(expr, linktype)
    except FilterCompileError as exc:
        return [f"{expr!r} on {linktype.name}: we refuse ({exc.reason}), libpcap accepts"]
    assert matcher is not None
    ran = run_program([(i.code, i.jt, i.jf, i.k) for i in program], packets)
    out = []
    for packet, ref, want, bpf in zip(packets, refs, theirs, ran, strict=True):
        got = matcher.match(packet)
        if got == want and bpf == want:
            continue
        short = ref is None or bpfvm.run(unoptimized, ref) is None
        if short and {got, bpf} <= {want, False}:
            continue  # a frame too short for the expression: rejecting is right too
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
