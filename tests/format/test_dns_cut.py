"""A real DNS response cut by a snapshot length inside its answers, in both of capsvc's texts.

The corpus (../shared/pcaps) holds no DNS response with several answers (tshark finds none in
either corpus). dns_udp_8053.pcap's response (www.tcpdump.org. A?: one answer, two name
servers, five additional records, sent from port 8053) is made into one: its source port set to
53 (the UDP checksum to 0, "none") and its counts to 7/0/1, so its first seven records, the
bytes as they were sent, are read as answers (the OPT record stays additional). The response
is then cut at every byte from the DNS header on, its length on the wire kept:

- capsvc's own line prints the question, every answer read whole before the cut, then
  ``[|domain]`` (it used to drop the answers before the cut);
- capsvc's tcpdump format prints what ``tcpdump -n -r`` prints, byte for byte, for the made
  response and for the response as sent (tcpdump's quirks included: a cut inside the last
  answer's fixed part prints no marker).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from _agreement import our_blocks, tcpdump_blocks
from _corpora import CORPORA, packets_of

from capsvc.format._json import JsonFormatter
from capsvc.format._line import TextFormatter

SOURCE = CORPORA[0] / "dns_udp_8053.pcap"
#: The seven answers of the made response: where each ends (from the DNS header) and its text.
ANSWERS = [
    (49, "A 192.139.46.66"),
    (79, "NS sns.cooperix.net."),
    (109, "NS nic.sandelman.ca."),
    (125, "A 209.87.249.18"),
    (153, "AAAA 2607:f0b0:f::babe:f00d"),
    (169, "A 97.107.133.15"),
    (197, "AAAA 2600:3c03::f03c:91ff:fe96:e8ef"),
]
#: Where the answers start: after the 12-byte header and the question (17 + 4 bytes).
ANSWERS_AT = 33
QUESTION = "0143*- q: A? www.tcpdump.org. 7/0/1"
WHOLE = f"209.87.249.18:53 > 192.168.1.11:43757 {QUESTION} {', '.join(t for _, t in ANSWERS)} (208)"


def response(counts: tuple[int, int, int]) -> tuple[int, bytes, int]:
    """The corpus response (link type, frame, where its DNS message starts), from port 53,
    with answer/authority/additional counts ``counts``."""
    if not SOURCE.is_file():
        pytest.skip(f"{SOURCE} is absent")
    linktype, packet = packets_of(SOURCE)[1]
    frame = bytearray(packet.data)
    udp = 14 + (frame[14] & 0x0F) * 4
    assert struct.unpack_from("!H", frame, udp)[0] == 8053
    struct.pack_into("!H", frame, udp, 53)
    struct.pack_into("!H", frame, udp + 6, 0)
    struct.pack_into("!HHH", frame, udp + 8 + 6, *counts)
    return linktype, bytes(frame), udp + 8


def test_own_line_keeps_the_answers_read_before_the_cut() -> None:
    linktype, frame, dns = response((7, 0, 1))
    fmt = TextFormatter(linktype)
    assert fmt.format(0, frame, len(frame), 0).endswith(WHOLE)  # unchanged
    for cut in range(dns + ANSWERS_AT, len(frame)):
        line = fmt.format(0, frame[:cut], len(frame), 0)
        whole = [text for end, text in ANSWERS if dns + end <= cut]
        shown = QUESTION + "".join((", " if i else " ") + t for i, t in enumerate(whole))
        if len(whole) == len(ANSWERS):  # cut in the additional record: nothing missing
            assert line.endswith(f"{shown} (208)"), (cut - dns, line)
        else:
            assert line.endswith(f"{shown} [|domain] (208)"), (cut - dns, line)


@pytest.mark.parametrize("counts", [(7, 0, 1), (1, 2, 5)], ids=["seven answers", "as sent"])
def test_tcpdump_format_is_tcpdumps_on_every_cut(
    counts: tuple[int, int, int], tmp_path: Path
) -> None:
    linktype, frame, dns = response(counts)
    path = tmp_path / "cut.pcap"
    cuts = range(dns + 12, len(frame) + 1)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, cut in enumerate(cuts):
            f.write(struct.pack("<IIII", 1_700_000_000, i, cut, len(frame)) + frame[:cut])
    theirs = tcpdump_blocks(path)
    assert len(theirs) == len(cuts)
    # The cuts reach tcpdump's marker, after several answers when there are several.
    assert any("[|domain]" in text for text in theirs)
    assert any(text.count(", ") >= 3 and "[|domain]" in text for text in theirs) == (counts[0] > 1)
    ours = our_blocks(path)
    differ = [(c - dns, t, o) for c, t, o in zip(cuts, theirs, ours, strict=True) if t != o]
    assert not differ, differ[:3]


def test_json_keeps_the_answers_read_before_the_cut() -> None:
    """Mutation: the answers list set on the layer only after its loop (a cut dropped the
    answers read whole before it), and an A/AAAA record's data cut short escaping as OSError
    from inet_ntoa instead of marking the layer truncated."""
    linktype, frame, dns = response((7, 0, 1))
    fmt = JsonFormatter(linktype)
    whole = json.loads(fmt.format(0, frame, len(frame), 0))["layers"]["dns"]
    assert len(whole["answers"]) == len(ANSWERS) and "truncated" not in whole
    assert [a["type"] for a in whole["answers"]] == [t.split()[0] for _, t in ANSWERS]
    for cut in range(dns + ANSWERS_AT, len(frame)):
        layer = json.loads(fmt.format(0, frame[:cut], len(frame), 0))["layers"]["dns"]
        complete = sum(dns + end <= cut for end, _ in ANSWERS)
        got = layer.get("answers", [])
        assert got[:complete] == whole["answers"][:complete], cut - dns
        assert len(got) in (complete, complete + 1), (cut - dns, got)  # one read in part
        if complete < len(ANSWERS):
            assert layer.get("truncated") is True, (cut - dns, layer)
