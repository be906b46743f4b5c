"""The TPACKET_V3 block parser on hand-built blocks (no sockets)."""

from __future__ import annotations

import pytest
from _blocks import build_block
from hypothesis import given
from hypothesis import strategies as st

from capsvc import Direction, Packet
from capsvc.sources.afpacket._tpacket import (
    PACKET_OUTGOING,
    SLL2_HDR,
    SOCKADDR_LL,
    TP_STATUS_USER,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    TPACKET3_HDR,
    TPACKET3_HDRLEN,
    TPACKET_BLOCK_DESC,
    TPACKET_REQ3,
    block_status,
    bpf_direction_prefix,
    bpf_loopback_outgoing_prefix,
    fanout_arg,
    parse_block,
    ring_geometry,
    sll2_header,
)

ETH_FRAME = bytes.fromhex("02000000000b02000000000a0800") + b"\x45" + bytes(19) + b"payload"


def test_header_sizes_match_the_c_structs() -> None:
    assert TPACKET_BLOCK_DESC.size == 48
    assert TPACKET3_HDR.size == 48
    assert SOCKADDR_LL.size == 20
    assert TPACKET3_HDRLEN == 68
    assert TPACKET_REQ3.size == 28
    assert SLL2_HDR.size == 20


def test_packets_come_out_in_order_with_time_length_direction_ifindex() -> None:
    block = build_block(
        [
            {"data": ETH_FRAME, "sec": 10, "nsec": 5, "ifindex": 7},
            {
                "data": ETH_FRAME[:20],
                "sec": 10,
                "nsec": 6,
                "wire": 1500,
                "pkttype": PACKET_OUTGOING,
            },
            {"data": b"x" * 3, "sec": 11, "nsec": 0, "pkttype": 3},
        ]
    )
    batch = parse_block(block)
    assert batch == [
        Packet(10_000_000_005, ETH_FRAME, len(ETH_FRAME), Direction.INBOUND, 7),
        Packet(10_000_000_006, ETH_FRAME[:20], 1500, Direction.OUTBOUND, 3),
        Packet(11_000_000_000, b"xxx", 3, Direction.INBOUND, 3),
    ]
    assert all(type(p.data) is bytes for p in batch)


def test_block_at_an_offset_and_appending_to_a_batch() -> None:
    ring = build_block([{"data": b"a"}]) + build_block([{"data": b"b"}, {"data": b"c"}], lead=0)
    out: list[Packet] = []
    parse_block(ring, 0, out=out)
    second = len(build_block([{"data": b"a"}]))
    assert block_status(ring, second) == TP_STATUS_USER
    parse_block(ring, second, out=out)
    assert [p.data for p in out] == [b"a", b"b", b"c"]


def test_vlan_tag_is_put_back_after_the_mac_addresses() -> None:
    block = build_block(
        [
            {"data": ETH_FRAME, "status": TP_STATUS_VLAN_VALID, "tci": 0x2064},
            {
                "data": ETH_FRAME,
                "status": TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
                "tci": 5,
                "tpid": 0x88A8,
            },
        ]
    )
    tagged, qinq = parse_block(block, restore_vlan=True)
    assert tagged.data == ETH_FRAME[:12] + b"\x81\x00\x20\x64" + ETH_FRAME[12:]
    assert tagged.wire_len == len(ETH_FRAME) + 4
    assert qinq.data[12:16] == b"\x88\xa8\x00\x05"
    untouched = parse_block(block, restore_vlan=False)
    assert untouched[0].data == ETH_FRAME


def test_cooked_frames_get_an_sll2_header_from_sockaddr_ll() -> None:
    ip = b"\x45" + bytes(19)
    block = build_block(
        [
            {
                "data": ip,
                "ifindex": 9,
                "pkttype": PACKET_OUTGOING,
                "addr": b"\x02\0\0\0\0\x0b\0\0",
                "proto": b"\x08\x00",
            }
        ]
    )
    (pkt,) = parse_block(block, cooked=True)
    assert pkt.data == bytes.fromhex("0800 0000 00000009 0001 04 06 02000000000b0000") + ip
    assert pkt.data[:20] == sll2_header(b"\x08\x00", 9, 1, 4, b"\x02\0\0\0\0\x0b", 6)
    assert pkt.wire_len == 20 + len(ip)
    assert (pkt.direction, pkt.ifindex) == (Direction.OUTBOUND, 9)


def test_truncated_block_keeps_what_is_whole_and_never_raises() -> None:
    block = build_block([{"data": b"a" * 100}, {"data": b"b" * 100}])
    assert [p.data for p in parse_block(block[:-60])] == [b"a" * 100]
    assert parse_block(block[:60]) == []


@given(st.lists(st.binary(min_size=0, max_size=300), max_size=20), st.binary(max_size=64))
def test_any_damage_gives_packets_or_nothing_never_an_exception(
    frames: list[bytes], noise: bytes
) -> None:
    """Whatever a damaged header says, a packet's bytes are bytes of the block (nothing read
    outside it, nothing made up) and no more packets come out than the block announces."""
    block = bytearray(build_block([{"data": f} for f in frames]))
    block[48 : 48 + len(noise)] = noise  # scribble over the first packet header
    whole = bytes(block)
    num = int.from_bytes(whole[12:16], "little")
    got = parse_block(whole)
    assert len(got) <= num
    for p in got:
        assert p.data in whole and len(p.data) <= len(whole) - 48


def test_ring_geometry_whole_blocks_and_kernel_frame_rule() -> None:
    g = ring_geometry(32 * 2**20, 2**20, 8)
    assert (g.block_size, g.block_nr, g.ring_size) == (2**20, 32, 32 * 2**20)
    assert g.frame_nr == g.block_nr * (g.block_size // g.frame_size)
    assert TPACKET_REQ3.unpack(g.pack()) == (2**20, 32, 2048, g.frame_nr, 8, 0, 0)
    assert ring_geometry(4096, 4096, 1).block_nr == 2  # at least two blocks


@pytest.mark.parametrize(
    ("ring", "block", "tov", "message"),
    [
        (2**20, 1000, 8, "multiple of the page size"),
        (2**20, 0, 8, "multiple of the page size"),
        (4096, 8192, 8, "smaller than block_size"),
        (2**20, 4096, 0, "block_timeout_ms"),
        (2**20, 4096, 70000, "block_timeout_ms"),
    ],
)
def test_ring_geometry_refuses_bad_sizes(ring: int, block: int, tov: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ring_geometry(ring, block, tov)


def test_direction_prefix_drops_the_other_way_and_falls_through() -> None:
    assert bpf_direction_prefix(Direction.UNKNOWN) == []
    load, test, drop = bpf_direction_prefix(Direction.OUTBOUND)
    assert load == (0x30, 0, 0, 0xFFFFF004)  # ldb [SKF_AD_OFF + SKF_AD_PKTTYPE]
    assert test == (0x15, 1, 0, PACKET_OUTGOING)  # outgoing: skip the drop
    assert drop == (0x06, 0, 0, 0)
    assert bpf_direction_prefix(Direction.INBOUND)[1] == (0x15, 0, 1, PACKET_OUTGOING)


@pytest.mark.parametrize(
    ("fanout", "value"),
    [
        (None, None),
        ((7, "hash"), 7),
        ((7, "lb"), 7 | 1 << 16),
        ((1, "qm"), 1 | 5 << 16),
        ((65535, "cpu+defrag"), 65535 | (2 | 0x8000) << 16),
        ((3, "random+rollover,defrag"), 3 | (4 | 0x1000 | 0x8000) << 16),
    ],
)
def test_fanout_argument(fanout: tuple[int, str] | None, value: int | None) -> None:
    assert fanout_arg(fanout) == value


def _run_prefix(prefix: list[tuple[int, int, int, int]], pkttype: int, ifindex: int) -> bool:
    """Walk a prefix the way the kernel would: False when it returns 0 (drop), True when it
    falls through into the program after it."""
    pc, acc = 0, 0
    while pc < len(prefix):
        code, jt, jf, k = prefix[pc]
        if code == 0x06:
            return False
        if code in (0x30, 0x20):  # ld b/w [ancillary]
            acc = pkttype if (k - 0xFFFFF000) == 4 else ifindex
            pc += 1
        else:
            pc += 1 + (jt if acc == k else jf)
    return pc == len(prefix)


@pytest.mark.parametrize(
    ("pkttype", "ifindex", "kept"),
    [
        (PACKET_OUTGOING, 1, False),  # loopback, going out: the copy that is dropped
        (PACKET_OUTGOING, 7, False),
        (PACKET_OUTGOING, 3, True),  # outgoing elsewhere
        (0, 1, True),  # loopback, coming in
        (0, 3, True),
    ],
)
def test_loopback_outgoing_prefix(pkttype: int, ifindex: int, kept: bool) -> None:
    prefix = bpf_loopback_outgoing_prefix([1, 7])
    assert _run_prefix(prefix, pkttype, ifindex) is kept
    assert bpf_loopback_outgoing_prefix([]) == []
