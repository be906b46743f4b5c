"""TextWriter in each of its formats: the netbird line (default), tcpdump's and JSON."""

from __future__ import annotations

import io
import json

import pytest
from _helpers import ether, ipv4, tcp

from capsvc import Direction, LinkType, OptionError, Packet
from capsvc.format._tcpdump import TcpdumpFormatter
from capsvc.sinks import TextOptions, TextWriter

FRAME = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, b"GET / HTTP/1.1\r\n\r\n", flags="PA")))
BATCH = [Packet(1_714_564_800_000_000_000, FRAME, len(FRAME), Direction.UNKNOWN, 0)]


def test_default_is_the_netbird_line() -> None:
    out = io.StringIO()
    TextWriter(out, linktype=LinkType.ETHERNET).write_batch(BATCH)
    assert (
        "[---  TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] length 18: GET / HTTP/1.1" in out.getvalue()
    )


def test_tcpdump_format_writes_the_formatter_lines() -> None:
    out = io.StringIO()
    options = TextOptions(format="tcpdump", utc=True, stamp=2, hex=1)
    writer = TextWriter(out, linktype=LinkType.ETHERNET, options=options)
    writer.write_batch(BATCH)
    expected = TcpdumpFormatter(1, utc=True, stamp=2, hex=1).format(*BATCH[0][:4])
    assert out.getvalue() == expected + "\n"
    assert out.getvalue().startswith("1714564800.000000 IP 10.0.0.1.40000 > 10.0.0.2.80: ")
    assert "HTTP: GET / HTTP/1.1\n\t0x0000:  4500" in out.getvalue()


def test_json_format_writes_one_object_per_line() -> None:
    out = io.StringIO()
    writer = TextWriter(out, linktype=LinkType.ETHERNET, options=TextOptions(format="json"))
    writer.write_batch(BATCH * 3)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 3
    assert records[0]["layers"]["http"] == {"line": "GET / HTTP/1.1"}


def test_unknown_format_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="unknown text format 'xml'"):
        TextWriter(io.StringIO(), options=TextOptions(format="xml"))
