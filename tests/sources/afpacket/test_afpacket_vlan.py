"""802.1Q on live AF_PACKET sockets: tags restored into the frames, and vlan in kernel filters."""

from __future__ import annotations

import pytest
from _afpacket import collect, frames, source
from _netns import VethPair

pytestmark = pytest.mark.netns


async def test_vlan_tag_is_restored(pair: VethPair) -> None:
    src = source(pair.host)
    try:
        sent = frames(pair, 3, vlans=(100,)) + frames(pair, 1)
        pair.send_from_peer(sent)
        got = await collect(src, 4)
    finally:
        await src.aclose()
    assert [p.data for p in got] == sent
    assert got[0].data[12:16] == b"\x81\x00\x00\x64"
    assert [p.wire_len for p in got] == [len(f) for f in sent]


def vlan_mix(pair: VethPair) -> dict[str, list[bytes]]:
    """Frames from the peer: tagged and untagged, to the DNS port and another."""
    return {
        "vlan 100 dns": frames(pair, 3, dport=53, vlans=(100,)),
        "vlan 100 other": frames(pair, 2, dport=54, vlans=(100,)),
        "vlan 200 dns": frames(pair, 2, dport=53, vlans=(200,)),
        "untagged dns": frames(pair, 2, dport=53),
        "untagged other": frames(pair, 2, dport=54),
    }


async def capture_mix(pair: VethPair, expr: str, expected: int) -> set[bytes]:
    """The marked frames a source filtering with ``expr`` captures from ``vlan_mix``."""
    src = source(pair.host, filter=expr)
    try:
        pair.send_from_peer([f for group in vlan_mix(pair).values() for f in group])
        got = await collect(src, expected, settle=0.3)
    finally:
        await src.aclose()
    return {p.data for p in got}


async def test_kernel_strips_the_tag_before_a_plain_vlan_program(
    pair: VethPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why AfPacketSource compiles with kernel_vlan: on receive, the kernel moves the 802.1Q tag
    # into the packet's metadata before the socket filter runs (veth, whatever its rxvlan
    # offload setting), so a program looking for 0x8100 in the frame never sees a tag.
    import capsvc.filter

    plain = capsvc.filter.compile_bpf
    monkeypatch.setattr(
        capsvc.filter,
        "compile_bpf",
        lambda node, linktype, snaplen, kernel_vlan=False: plain(node, linktype, snaplen),
    )
    mix = vlan_mix(pair)
    assert await capture_mix(pair, "vlan", 0) == set()
    # The kernel shows tagged frames without their tag: a plain port test takes them all.
    got = await capture_mix(pair, "udp port 53", 7)
    assert got == {f for name, group in mix.items() if name.endswith("dns") for f in group}


async def test_vlan_filter_in_the_kernel_sees_stripped_tags(pair: VethPair) -> None:
    mix = vlan_mix(pair)
    got = await capture_mix(pair, "vlan 100 and udp port 53", 3)
    assert got == set(mix["vlan 100 dns"])  # tags restored in the data, as sent
    got = await capture_mix(pair, "vlan", 7)
    assert got == {f for name, group in mix.items() if name.startswith("vlan") for f in group}


async def test_not_vlan_in_the_kernel_takes_only_untagged_frames(pair: VethPair) -> None:
    mix = vlan_mix(pair)
    got = await capture_mix(pair, "not vlan", 4)
    assert got == set(mix["untagged dns"] + mix["untagged other"])
    # As in libpcap, "vlan" moves the offsets of what follows it, whatever the and/or/not, but
    # only for a tag found in the frame: written last, it leaves the port test where it is.
    got = await capture_mix(pair, "udp port 53 and not vlan", 2)
    assert got == set(mix["untagged dns"])
