"""Every decoder of the text and stats path keeps its own contract on every truncation of the
real frames both corpora hand it, and on hypothesis' variations of them.

"TextWriter never raises" rests on these tests, not on the formatter's catch-all (which real
and random frames never reach): each decoder is called directly, without the catch-all, with
the inputs the text path gives it on the corpora (recorded by running the formatters over
them), cut at every byte. The contract:

- no exception, ever;
- link decoders: a frame cut before the network layer's offset gives ``LINK_TRUNCATED``; cut
  after it, the same ``(ethertype, offset)`` as the whole frame;
- message formatters (DNS, HTTP/TLS/SSH, DHCP, NTP, QUIC, VXLAN, Geneve, BGP, GRE, ESP, AH,
  OSPF, IP-in-IP, ICMP quotes, the link layers' own messages): a message cut short gives the
  whole message's text or a text with a ``[|proto]`` marker, never a different text without
  one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "format"))
from _corpora import CORPORA, corpus_files, packets_of

from capsvc.decode import _link
from capsvc.decode._ether import LINK_TRUNCATED
from capsvc.format import _apps, _line, _links
from capsvc.format._json import JsonFormatter
from capsvc.format._line import TextFormatter

Call = tuple[str, Callable[..., Any], tuple[Any, ...]]


def _recorded() -> dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]]:
    """Run the formatters over both corpora and record each decoder call of the text path."""
    calls: dict[str, dict[bytes, tuple[Callable[..., Any], tuple[Any, ...]]]] = {}

    def recorder(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            data = args[0]
            key = bytes(data[: args[2]]) + repr(args[1:]).encode() if len(args) > 2 else data
            calls.setdefault(name, {}).setdefault(key, (func, args))
            return func(*args)

        return wrapper

    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attr: Any, name: str) -> None:
        if isinstance(owner, dict):
            saved.append((owner, attr, owner[attr]))
            owner[attr] = recorder(name, owner[attr])
        else:
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, recorder(name, getattr(owner, attr)))

    for port in list(_apps.UDP_PORTS):
        patch(_apps.UDP_PORTS, port, f"udp:{_apps.UDP_PORTS[port].__name__}")
    for port in list(_apps.TCP_PORTS):
        patch(_apps.TCP_PORTS, port, "tcp:bgp")
    for proto in list(_apps.IP_PROTOCOLS):
        patch(_apps.IP_PROTOCOLS, proto, f"ip:{_apps.IP_PROTOCOLS[proto].__name__}")
    for linktype in list(_links._MESSAGES):
        patch(_links._MESSAGES, linktype, f"message:{linktype}")
    for attr in ("dns_summary", "annotate_tcp", "icmp_text", "icmp6_text", "link_text"):
        patch(_line, attr, attr)
    try:
        for folder in CORPORA:
            for path in corpus_files(folder):
                formatters: dict[int, TextFormatter] = {}
                for linktype, p in packets_of(path):
                    fmt = formatters.setdefault(linktype, TextFormatter(linktype))
                    fmt.format(p[0], p[1], p[2], p[3])
                    calls.setdefault("link", {}).setdefault(
                        bytes(p[1][:160]) + linktype.to_bytes(4, "big"),
                        (_link.link_decoder(linktype), (bytes(p[1]),)),
                    )
    finally:
        for owner, attr, value in reversed(saved):
            if isinstance(owner, dict):
                owner[attr] = value
            else:
                setattr(owner, attr, value)
    return {name: list(found.values()) for name, found in calls.items()}


_CACHE: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]] = {}


def recorded() -> dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]]:
    if not _CACHE:
        _CACHE.update(_recorded())
    return _CACHE


def _noinner(kind: int, data: bytes, pos: int, end: int, length: int) -> str:
    # The packet inside a tunnel is the formatter's to render (tested on whole lines below).
    return f"inner {kind}"


def _cuts(func: Callable[..., Any], args: tuple[Any, ...]) -> Iterator[tuple[int, Any, Any]]:
    """(cut, text of the cut message, text of the whole) for every cut of a recorded call whose
    arguments are ``(data, pos, end, ...)``."""
    data, pos, end = args[0], args[1], args[2]
    rest = tuple(_noinner if callable(a) else a for a in args[3:])
    whole = func(data, pos, end, *rest)
    # A caller hands a message formatter at least one byte (else the line is the transport's).
    for cut in range(pos + 1, end):
        yield cut, func(data[:cut], pos, cut, *rest), whole


def _check_message(name: str, cut: int, got: Any, whole: Any) -> None:
    texts = (got,) if not isinstance(got, tuple) else got
    joined = " ".join(str(t) for t in texts)
    assert got == whole or "[|" in joined, (name, cut, got, whole)


#: Decoders whose recorded arguments are (data, pos, end, ...): the message formatters.
MESSAGE_DECODERS = ["annotate_tcp", "icmp_text", "icmp6_text"]


@pytest.fixture(scope="module")
def calls() -> dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]]:
    return recorded()


def test_the_corpora_reach_every_decoder(
    calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]],
) -> None:
    """The recording is not empty for any decoder this module claims to test."""
    for name in [*MESSAGE_DECODERS, "link", "link_text", "udp:_dns", "udp:_dhcp", "udp:_ntp",
                 "udp:_vxlan", "udp:_geneve", "udp:_quic", "udp:_dhcp6", "tcp:bgp", "ip:_gre",
                 "ip:_esp", "ip:_ospf"]:  # fmt: skip
        assert calls.get(name), f"no corpus input reaches {name}"


def test_link_decoders_on_every_cut(
    calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]],
) -> None:
    """Mutation: ``decode_ethernet`` returning ``(-1, 0)`` instead of ``LINK_TRUNCATED`` for a
    frame shorter than 14 bytes (the ``[|ether]`` marker lost): killed here."""
    checked = 0
    for decode, (frame,) in calls["link"]:
        ethertype, off = decode(frame)
        for cut in range(min(len(frame), 200)):
            got = decode(frame[:cut])
            if ethertype >= 0 and cut < off:
                # NFLOG: a message cut between TLVs reads as one without its packet (its text
                # then ends with [|nflog] when a TLV is cut).
                allowed = (LINK_TRUNCATED, -2) if decode.__name__ == "decode_nflog" else (-3,)
                assert got[0] in allowed, (decode.__name__, cut, got, off)
            elif ethertype >= 0:
                # Past the offset a decoder may still read (an LLC header's three bytes).
                assert got in ((ethertype, off), (LINK_TRUNCATED, 0)), (decode.__name__, cut, got)
            checked += 1
    assert checked > 50_000


@pytest.mark.parametrize("name", MESSAGE_DECODERS)
def test_message_decoders_on_every_cut(
    name: str, calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]]
) -> None:
    """Mutation (DNS): ``if pos + 10 > end: raise _Malformed`` removed from ``dns_summary``'s
    answer loop: the cut answer raises struct.error here (no catch-all in between)."""
    for func, args in calls[name]:
        if name == "annotate_tcp":
            args = (*args[:3], True)  # the capture cut it: markers are due
        for cut, got, whole in _cuts(func, args):
            _check_message(name, cut, got, whole)


@pytest.mark.parametrize("kind", ["udp", "tcp", "ip"])
def test_application_and_tunnel_decoders_on_every_cut(
    kind: str, calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]]
) -> None:
    """DHCP, DHCPv6, NTP, QUIC, VXLAN, Geneve, DNS (by UDP port), BGP, GRE, ESP, AH, OSPF and
    IP-in-IP: no exception and a marker on every cut.

    Mutation: ``quic_header`` returning None (no annotation, plain ``length N``) for an
    Initial cut inside its connection IDs instead of the ``[|quic]`` line: killed here."""
    names = [n for n in calls if n.startswith(kind + ":")]
    assert names
    for name in names:
        for func, args in calls[name]:
            for cut, got, whole in _cuts(func, args):
                if whole is None and got is None:
                    continue
                _check_message(name, cut, got, whole)


def test_link_text_on_every_cut(
    calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]],
) -> None:
    """ARP, LLC, IS-IS and the other non-IP payloads (``link_text(data, ethertype, pos,
    length)``): no exception on any cut; a cut ARP or IS-IS header is marked."""
    for func, (data, ethertype, pos, length) in calls["link_text"]:
        whole = func(data, ethertype, pos, length)
        for cut in range(pos, len(data)):
            got = func(data[:cut], ethertype, pos, length)
            if got[0] in ("ARP", "ISIS"):
                assert got == whole or "[|" in got[1], (cut, got, whole)


def test_link_messages_on_every_cut(
    calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...]]]],
) -> None:
    """802.11 management and control frames (radiotap and plain), SLARP, CDP, PPP control
    protocols, Q.933, CSLIP: no exception on any cut, and a marker where the text changes.

    Mutation: ``mgmt_body`` without the ``pos + 2 + size > end`` element check (an element
    running past the capture read as if whole): the SSID text changes without ``[|802.11]``."""
    names = [n for n in calls if n.startswith("message:")]
    assert len(names) >= 3
    for name in names:
        for func, (data, wire_len, verbose) in calls[name]:
            whole = func(data, wire_len, verbose)
            for cut in range(len(data)):
                got = func(data[:cut], wire_len, verbose)
                assert got == whole or "[|" in got[1], (name, cut, got, whole)


def _line_cuts(length: int) -> range | list[int]:
    """Every cut of a frame up to 256 bytes; beyond, every 8th (the headers are all early)."""
    if length <= 256:
        return range(length)
    return [*range(256), *range(256, length, 8)]


def test_whole_lines_on_every_cut_of_every_corpus_frame() -> None:
    """``TextFormatter.format`` (the catch-all disabled) on cuts of every frame of both
    corpora, verbose: never raises, and a cut frame's line is the whole frame's line or has a
    ``[|proto]`` marker (IP, TCP, UDP, tunnels and their inner packets, annotations).

    Mutation: the ``[|tcp]`` line of a cut TCP header (``_cut_transport``) turned back into
    ``??? len=N``: killed here. Mutation: ``_DECODE_ERRORS`` narrowed to ``()`` and any decoder's
    bounds check removed: the exception surfaces here."""
    original = _line._DECODE_ERRORS
    _line._DECODE_ERRORS = ()  # type: ignore[assignment]
    checked = 0
    try:
        for folder in CORPORA:
            for path in corpus_files(folder):
                for linktype, p in packets_of(path):
                    frame, wire = p[1], p[2]
                    fmt = TextFormatter(linktype, verbose=True)
                    whole = fmt.format(p[0], frame, wire, p[3])[16:]
                    for cut in _line_cuts(len(frame)):
                        fmt.flows.clear()
                        got = TextFormatter(linktype).format(p[0], frame[:cut], wire, p[3])
                        plain = TextFormatter(linktype).format(p[0], frame, wire, p[3])[16:]
                        got = got[16:]
                        # A payload cut to nothing loses its annotation, as in tcpdump.
                        assert (
                            got == plain
                            or "[|" in got
                            or "???" in plain
                            or "[|" in plain  # the file's frame is itself cut short
                            or plain.startswith(got + ": ")
                        ), (path.name, cut, got, plain)
                        checked += 1
                    assert whole
    finally:
        _line._DECODE_ERRORS = original
    assert checked > 500_000


_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.data())
def test_hypothesis_varies_corpus_inputs_of_every_decoder(data: st.DataObject) -> None:
    """Any decoder, any recorded corpus input, cut anywhere, with bytes flipped: no exception;
    and with a cut alone (no flip), the contract of the module docstring."""
    found = recorded()
    name = data.draw(st.sampled_from(sorted(found)))
    func, args = data.draw(st.sampled_from(found[name]))
    frame = bytearray(args[0])
    flips = data.draw(st.lists(st.tuples(st.integers(0, max(len(frame) - 1, 0)),
                                         st.integers(0, 255)), max_size=4))  # fmt: skip
    for at, value in flips:
        if frame:
            frame[at] = value
    raw = bytes(frame)
    if name == "link":
        cut = data.draw(st.integers(0, len(raw)))
        whole = func(raw)
        got = func(raw[:cut])
        if whole[0] >= 0 and not flips:
            assert got[0] == LINK_TRUNCATED or got == whole
        return
    if name.startswith("message:"):
        cut = data.draw(st.integers(0, len(raw)))
        whole = func(raw, args[1], args[2])
        got = func(raw[:cut], args[1], args[2])
        assert isinstance(got, tuple)
        if not flips:
            assert got == whole or "[|" in got[1]
        return
    if name == "link_text":
        cut = data.draw(st.integers(args[2], max(len(raw), args[2])))
        assert isinstance(func(raw[:cut], *args[1:]), tuple)
        return
    pos, end = args[1], args[2]
    cut = data.draw(st.integers(pos + 1, max(end, pos + 1)))
    rest = tuple(_noinner if callable(a) else a for a in args[3:])
    whole = func(raw, pos, end, *rest)
    got = func(raw[:cut], pos, cut, *rest)
    if not flips and not (whole is None and got is None) and name != "annotate_tcp":
        _check_message(name, cut, got, whole)


def cuts_of(size: int) -> list[int]:
    """Where to cut a frame of ``size`` bytes: at every byte of its first 256 (where the headers
    are), then at every 7th, at most 256 places spread over the rest, and at each of its last
    8 bytes (a 64 KB frame is cut 520 times, not 9,400)."""
    head = list(range(min(size, 256)))
    step = max(7, (size - 256) // 256)
    return sorted({*head, *range(256, size, step), *range(max(0, size - 8), size)})


def test_json_lines_on_cuts_of_every_corpus_frame() -> None:
    """``JsonFormatter.format`` on cuts of every frame of both corpora: never raises, always one
    line of JSON whose lengths are the frame's, and a cut frame's layers are the whole frame's or
    say ``truncated`` somewhere (the JSON path has no catch-all beyond its decode errors).

    Mutation: a DNS A record's data read without a bounds check (``inet_ntoa`` of a cut
    address raised OSError out of the formatter): killed here."""
    checked = 0
    for folder in CORPORA:
        for path in corpus_files(folder):
            for linktype, p in packets_of(path)[:40]:
                frame, wire = p[1], p[2]
                fmt = JsonFormatter(linktype)
                whole = json.loads(fmt.format(p[0], frame, wire, p[3]))["layers"]
                for cut in cuts_of(len(frame)):
                    line = fmt.format(p[0], frame[:cut], wire, p[3])
                    assert "\n" not in line
                    record = json.loads(line)
                    assert record["caplen"] == cut and record["len"] == wire
                    layers = record["layers"]
                    assert layers == whole or "truncated" in json.dumps(layers), (
                        path.name,
                        cut,
                        layers,
                    )
                    checked += 1
    assert checked > 50_000
