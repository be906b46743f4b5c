"""The measure: capsvc's tcpdump format against ``tcpdump -n -r`` on both corpora.

Every packet of ../shared/pcaps and ../shared/pcaps-linktypes is printed by both; a packet
agrees when the texts are byte-identical. The protocols capsvc decodes in tcpdump's words
(``_agreement.LISTED``) must agree on every packet (exclusions need a written reason, in
``_agreement.EXCLUDED``); the others are reported by bench/bench_tcpdump_agreement.py.
"""

from __future__ import annotations

import pytest
from _agreement import EXCLUDED, LISTED, measure, protocol
from _corpora import CORPORA, corpus_files

ALL_FILES = [p for folder in CORPORA if folder.is_dir() for p in corpus_files(folder)]


@pytest.fixture(scope="module")
def agreement():  # type: ignore[no-untyped-def]
    if not ALL_FILES:
        pytest.skip("capture corpora not found")
    return measure(ALL_FILES)


def test_every_file_gives_as_many_packets_as_tcpdump(agreement) -> None:  # type: ignore[no-untyped-def]
    assert agreement.counts_differ == []
    assert sum(agreement.total.values()) > 4000


@pytest.mark.parametrize("name", LISTED)
def test_listed_protocol_agrees_on_every_packet(agreement, name: str) -> None:  # type: ignore[no-untyped-def]
    wrong = [(f, i, ours, theirs) for f, i, n, ours, theirs in agreement.differ if n == name]
    assert agreement.total[name] > 0, f"no {name} packet in the corpora"
    assert wrong == [], f"{name}: {agreement.share(name):.1%} agree; first: {wrong[:3]}"


def test_exclusions_have_reasons() -> None:
    assert all(reason.strip() for reason in EXCLUDED.values())


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("12:00:00.000000 IP 10.0.0.1.1 > 10.0.0.2.80: Flags [S], seq 1, win 2, length 0", "TCP"),
        (
            "12:00:00.000000 IP 1.1.1.1.1 > 2.2.2.2.80: Flags [P.], seq 1:5, ack 1, win 2, "
            "length 4: HTTP: GET / HTTP/1.1",
            "HTTP",
        ),
        (
            "12:00:00.000000 IP 1.1.1.1.1 > 2.2.2.2.179: Flags [P.], seq 1:5, ack 1, win 2, "
            "length 4: BGP",
            "TCP:BGP",
        ),
        ("12:00:00.000000 IP 1.1.1.1.1 > 2.2.2.2.53: 4660+ A? example.com. (29)", "DNS"),
        ("12:00:00.000000 IP 1.1.1.1.1 > 2.2.2.2.9: UDP, length 4", "UDP"),
        ("12:00:00.000000 IP 1.1.1.1.1 > 2.2.2.2.123: NTPv4, Client, length 48", "app:NTPv4"),
        ("12:00:00.000000 IP 1.1.1.1 > 2.2.2.2:  ip-proto-253 4", "IP"),
        ("12:00:00.000000 IP 1.1.1.1 > 2.2.2.2: GREv0, length 4: IP 3.3.3.3 > 4.4.4.4: ", "GREv0"),
        (
            "12:00:00.000000 IP6 fd00::1 > fd00::2: ICMP6, echo request, id 1, seq 1, length 8",
            "ICMPv6",
        ),
        ("12:00:00.000000 IP6 fd00::1 > fd00::2: HBH 1 > 2: UDP, length 4", "UDP"),
        ("12:00:00.000000 ARP, Request who-has 1.1.1.1 tell 2.2.2.2, length 28", "ARP"),
        ("12:00:00.000000 LLDP, length 40", "LLDP"),
    ],
)
def test_protocol_of_a_line(line: str, name: str) -> None:
    assert protocol(line) == name
