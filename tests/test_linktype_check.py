"""A Session given a matcher says once when the first frames offered are not of its link type
(the README's old trap: Ethernet frames offered to the default raw IP session, a filter that
matches none of them, and not a word)."""

from __future__ import annotations

import logging

import pytest
from _helpers import ether, ipv4, ipv6, sll2, tcp, udp

from capsvc import LinkType, PacketBatch, Session

TLS = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443, b"x" * 20, flags="PA"))
DNS6 = ipv6("2001:db8::1", "2001:db8::2", udp(5353, 53, b"q"))
LLDP = bytes.fromhex("0180c200000e020000000001" + "88cc") + b"\x02\x07\x04" + b"\x00" * 40


class NullSink:
    def write_batch(self, batch: PacketBatch) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def offer_all(session: Session, frames: list[bytes]) -> None:
    async with session:
        for frame in frames:
            session.offer(frame)


async def test_ethernet_frames_offered_as_raw_ip_are_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Session(sinks=[NullSink()], matcher="tcp port 443")
    await offer_all(session, [ether(TLS)] * 30)
    assert warnings_of(caplog) == [
        "12 of the first 12 frames are not raw IP: pass linktype=LinkType.ETHERNET?"
    ]
    assert session.stats().filtered == 30  # the check changes no verdict


async def test_raw_ip_offered_as_ethernet_and_the_session_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Session(sinks=[NullSink()], matcher="udp", linktype=LinkType.ETHERNET, name="tunnel")
    await offer_all(session, [TLS, DNS6] * 10)
    assert warnings_of(caplog) == [
        "session tunnel: 12 of the first 12 frames are not Ethernet: pass linktype=LinkType.RAW?"
    ]


async def test_cooked_frames_offered_as_ethernet(caplog: pytest.LogCaptureFixture) -> None:
    session = Session(sinks=[NullSink()], matcher="tcp", linktype=LinkType.ETHERNET)
    await offer_all(session, [sll2(TLS)] * 12)
    assert warnings_of(caplog) == [
        "12 of the first 12 frames are not Ethernet: pass linktype=LinkType.LINUX_SLL2?"
    ]


async def test_fewer_frames_than_the_check_takes_are_checked_at_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Session(sinks=[NullSink()], matcher="tcp port 443")
    await offer_all(session, [ether(TLS), ether(TLS)])
    assert warnings_of(caplog) == [
        "2 of the first 2 frames are not raw IP: pass linktype=LinkType.ETHERNET?"
    ]


@pytest.mark.parametrize(
    ("linktype", "frames"),
    [
        (LinkType.RAW, [TLS, DNS6] * 10),  # right
        (LinkType.ETHERNET, [ether(TLS)] * 20),  # right
        (LinkType.ETHERNET, [LLDP] * 20),  # not IP, but nothing else explains them
        (LinkType.RAW, [TLS] * 7 + [ether(TLS)] * 5),  # mostly right
    ],
)
async def test_frames_of_the_link_type_are_not_warned_about(
    caplog: pytest.LogCaptureFixture, linktype: LinkType, frames: list[bytes]
) -> None:
    await offer_all(Session(sinks=[NullSink()], matcher="tcp", linktype=linktype), frames)
    assert warnings_of(caplog) == []


async def test_raw_frames_that_are_no_ip_at_all(caplog: pytest.LogCaptureFixture) -> None:
    await offer_all(Session(sinks=[NullSink()], matcher="tcp"), [b"\x00" * 40] * 12)
    assert warnings_of(caplog) == [
        "12 of the first 12 frames are not raw IP: "
        "is linktype= the link type of the frames offered?"
    ]


async def test_no_check_without_a_matcher(caplog: pytest.LogCaptureFixture) -> None:
    await offer_all(Session(sinks=[NullSink()]), [ether(TLS)] * 20)
    assert warnings_of(caplog) == []


async def test_the_check_lets_the_matcher_alone_after_the_first_frames() -> None:
    session = Session(sinks=[NullSink()], matcher="tcp port 443")
    probe = session._match
    async with session:
        for _ in range(11):
            session.offer(TLS)
        assert session._match is probe
        session.offer(TLS)
        assert session._match is not probe  # the matcher itself from the 13th frame on
        for _ in range(10):
            session.offer(ether(TLS))
    assert session.stats().packets == 12 and session.stats().filtered == 10
