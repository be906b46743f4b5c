"""DNS summaries on hand-built messages cut at every byte: ``[|domain]`` where reading stopped,
never an exception, and the same line through the text formatter (never ``??? len=``).

The corpora hold few DNS responses with several answers of several types; these messages
cover every record type the summary prints (A, AAAA, CNAME, MX) and name compression.
"""

from __future__ import annotations

import io
import struct

import pytest
from _helpers import ether, ipv4, udp

from capsvc import Direction, LinkType, Packet
from capsvc.decode._dns import dns_summary
from capsvc.format._line import TextFormatter
from capsvc.sinks import TextWriter


def name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".") if p) + b"\0"


def rr(owner: bytes, rtype: int, rdata: bytes) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata


#: example.com. A? answered with a CNAME, an MX, two A and an AAAA (pointers to offset 12).
RESPONSE = (
    struct.pack("!HHHHHH", 0x1A2B, 0x8580, 1, 5, 0, 0)
    + name("example.com")
    + struct.pack("!HH", 1, 1)
    + rr(b"\xc0\x0c", 5, name("www.example.com"))
    + rr(b"\xc0\x0c", 15, b"\x00\x0a" + b"\x04mail\xc0\x0c")
    + rr(b"\xc0\x0c", 1, bytes([93, 184, 216, 34]))
    + rr(b"\xc0\x0c", 1, bytes([93, 184, 216, 35]))
    + rr(b"\xc0\x0c", 28, bytes.fromhex("20010db8000000000000000000000001"))
)
WHOLE = (
    "1a2b* q: A? example.com. 5/0/0 CNAME www.example.com., MX mail.example.com. 10,"
    " A 93.184.216.34, A 93.184.216.35, AAAA 2001:db8::1"
)
QUERY = struct.pack("!HHHHHH", 0x0042, 0x0100, 1, 0, 0, 0) + name("example.org") + b"\x00\x1c\0\1"


def test_whole_response_and_query() -> None:
    assert dns_summary(RESPONSE, 0, len(RESPONSE), len(RESPONSE)) == f"{WHOLE} ({len(RESPONSE)})"
    assert dns_summary(QUERY, 0, len(QUERY), 29) == "0042+ AAAA? example.org. (29)"


@pytest.mark.parametrize("message", [RESPONSE, QUERY], ids=["response", "query"])
def test_every_cut_ends_with_the_marker_after_a_prefix_of_the_whole(message: bytes) -> None:
    """Mutations guarded: the bounds checks of the answer loop (``pos + 10 > end``, ``pos +
    rdlen > end``) or of the question (``pos + 4 > end``) removed: a cut message raises
    struct.error/IndexError, or prints answers read past the capture instead of ``[|domain]``."""
    length = len(message)
    whole = dns_summary(message, 0, length, length)
    assert whole is not None
    body = whole.removesuffix(f" ({length})")
    assert dns_summary(message, 0, 11, length) is None  # no header: the caller says so
    for cut in range(12, length):
        got = dns_summary(message[:cut], 0, cut, length)
        assert got is not None, cut
        assert got.endswith(f" [|domain] ({length})"), (cut, got)
        shown = got.removesuffix(f" [|domain] ({length})")
        assert body.startswith(shown), (cut, got)


def test_a_pointer_loop_and_a_reserved_label_are_malformed_not_endless() -> None:
    head = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
    looping = head + b"\xc0\x0c"  # the question's name points at itself
    assert dns_summary(looping, 0, len(looping), 14) == "0007 [|domain] (14)"
    reserved = head + b"\x80abc\0\0\1\0\1"
    assert dns_summary(reserved, 0, len(reserved), 9).endswith(" [|domain] (9)")  # type: ignore[union-attr]


def frame(message: bytes) -> bytes:
    return ether(ipv4("10.0.0.53", "10.0.0.1", udp(53, 40000, message)))


def test_every_cut_of_the_frame_prints_the_marker_not_question_marks() -> None:
    """Mutation guarded: a bounds check of the DNS reader removed turns ``[|domain]`` into the
    formatter's catch-all ``??? len=N`` (an exception caught a layer up)."""
    data = frame(RESPONSE)
    fmt = TextFormatter(LinkType.ETHERNET)
    whole = fmt.format(0, data, len(data), 0)
    assert whole.endswith(f"{WHOLE} ({len(RESPONSE)})"), whole
    dns_at = len(data) - len(RESPONSE)
    for cut in range(dns_at + 12, len(data)):
        line = fmt.format(0, data[:cut], len(data), 0)
        assert "???" not in line and line.endswith(f" [|domain] ({len(RESPONSE)})"), (cut, line)


def test_text_writer_writes_a_line_for_every_cut() -> None:
    """Mutation guarded: the formatter's catch-all narrowed with a bounds check removed makes
    TextWriter raise on a cut response."""
    data = frame(RESPONSE)
    out = io.StringIO()
    writer = TextWriter(out, linktype=LinkType.ETHERNET)
    batch = [
        Packet(i, data[:cut], len(data), Direction.INBOUND, 0)
        for i, cut in enumerate(range(len(data) + 1))
    ]
    writer.write_batch(batch)
    writer.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(batch)
    # From the empty payload on, every cut line ends with the marker; the whole one has none.
    assert sum("[|domain]" in line for line in lines) == len(RESPONSE)
    assert lines[-1].endswith(f"{WHOLE} ({len(RESPONSE)})")
