"""capsvc's tcpdump format against tcpdump on 802.11, radiotap, ARCNET, SLIP, PKTAP and MACsec.

Every corpus file of those link types (and the MACsec files of the Ethernet corpus) prints, with
and without tcpdump's flags, exactly what ``tcpdump -n [FLAGS] -r FILE`` prints for it; so do
hand-built frames of every 802.11 subtype and radiotap field (_wlan_frames.py). Every
truncation of those corpus frames gives a line, never an exception, and the line tcpdump gives,
truncation markers (`` [|802.11]``, `` [|802.11_radio]``, `` [|arcnet_linux]``) included.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from _agreement import our_blocks, tcpdump_blocks
from _corpora import CORPORA, LINKTYPES, corpus_files, packets_of
from _wlan_frames import radiotap_frames, wlan_frames, write_pcap
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc.format._tcpdump import TcpdumpFormatter

#: 802.11, 802.11 with radiotap, SLIP, Linux ARCNET, PKTAP.
LINK_TYPES = (105, 127, 8, 129, 258)


def _files() -> list[Path]:
    found: list[Path] = []
    if LINKTYPES.is_dir():
        found += [p for p in corpus_files(LINKTYPES) if packets_of(p)[0][0] in LINK_TYPES]
    ethernet = CORPORA[0]
    if ethernet.is_dir():
        found += sorted(ethernet.glob("macsec*.pcap"))
    return found


FILES = _files()
FLAGS = ("", "-e", "-v", "-x", "-q")


def test_the_corpora_hold_these_link_types() -> None:
    if not FILES:
        pytest.skip("capture corpora not found")
    kinds = {packets_of(p)[0][0] for p in FILES}
    assert kinds == {1, *LINK_TYPES}
    assert sum(len(packets_of(p)) for p in FILES) >= 60


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_prints_as_tcpdump(path: Path, flag: str) -> None:
    flags = (flag,) if flag else ()
    assert our_blocks(path, *flags) == tcpdump_blocks(path, *flags)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("wlan")
    return [
        write_pcap(folder / "wlan.pcap", 105, wlan_frames()),
        write_pcap(folder / "radiotap.pcap", 127, radiotap_frames()),
    ]


@pytest.mark.parametrize("flag", ("", "-e", "-v", "-x", "-X"))
def test_crafted_frames_print_as_tcpdump(crafted: list[Path], flag: str) -> None:
    flags = (flag,) if flag else ()
    for path in crafted:
        theirs = tcpdump_blocks(path, *flags)
        assert len(theirs) > 50
        assert our_blocks(path, *flags) == theirs


def _truncations(folder: Path) -> list[Path]:
    """One file per link type: every prefix of every packet of ``FILES``, wire length kept."""
    by_type: dict[int, list[tuple[bytes, int]]] = {}
    for path in FILES:
        for linktype, p in packets_of(path):
            cuts = by_type.setdefault(linktype, [])
            cuts.extend((p[1][:n], p[2]) for n in range(len(p[1]) + 1))
    out = []
    for linktype, frames in by_type.items():
        path = folder / f"cut-{linktype}.pcap"
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
            for data, wire in frames:
                f.write(struct.pack("<IIII", 1000, 0, len(data), wire) + data)
        out.append(path)
    return out


#: What tcpdump prints on some cut frames that capsvc's other printers do not (yet): the
#: IPv6 hop-by-hop printer's words on a cut option (the SLIP file's frame).
_OTHER_PRINTERS = ("[|hbhopt]",)


@pytest.mark.parametrize("flag", ("", "-e"))
def test_every_truncation_prints_as_tcpdump(tmp_path: Path, flag: str) -> None:
    if not FILES:
        pytest.skip("capture corpora not found")
    flags = (flag,) if flag else ()
    compared = 0
    for path in _truncations(tmp_path):
        theirs, ours = tcpdump_blocks(path, *flags), our_blocks(path, *flags)
        assert len(ours) == len(theirs), path.name
        for mine, their in zip(ours, theirs, strict=True):
            if any(marker in their for marker in _OTHER_PRINTERS):
                continue
            assert mine == their
            compared += 1
    assert compared > 8000


@settings(max_examples=300, deadline=None)
@given(
    linktype=st.sampled_from(LINK_TYPES),
    data=st.binary(max_size=120),
    extra=st.integers(min_value=0, max_value=64),
    link=st.booleans(),
    verbose=st.integers(min_value=0, max_value=2),
)
def test_random_frames_give_a_line(
    linktype: int, data: bytes, extra: int, link: bool, verbose: int
) -> None:
    formatter = TcpdumpFormatter(linktype, link=link, verbose=verbose)
    text = formatter.format(0, data, len(data) + extra)
    line, *dump = text.split("\n")
    assert line.startswith("00:00:00.000000 ") or line.startswith("[Invalid header")
    # Only tcpdump's hex dump follows, and with -v the indented rest of an IP packet's line
    # (tcpdump -v puts the addresses under the IP header's fields).
    assert all(d.startswith("\t0x") or (verbose and d.startswith("    ")) for d in dump), text
    assert "[|malformed]" not in text, text


def test_cut_frames_end_with_tcpdumps_markers() -> None:
    formatter = TcpdumpFormatter(127)
    header = radiotap_frames()[0]
    cut = header[: len(header) - 4]  # inside the acknowledgment's receiver address
    assert formatter.format(0, cut, len(header)).endswith(" [|802.11]")
    assert TcpdumpFormatter(127).format(0, header[:6], len(header)).endswith(" [|802.11_radio]")
    assert TcpdumpFormatter(105).format(0, b"\x80", 40).endswith(" [|802.11]")
