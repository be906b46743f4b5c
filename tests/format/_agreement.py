"""How capsvc's tcpdump format agrees with ``tcpdump -n -r``, packet by packet, per protocol.

Used by tests/format/test_tcpdump_agreement.py (which fails below the target) and by
bench/bench_tcpdump_agreement.py (which reports the figures). A packet's text is what tcpdump
prints for it: its line and any continuation lines (hex dumps, ``-v`` lines). A packet agrees
when capsvc's text is the same, byte for byte. Its protocol is read from tcpdump's text: the
innermost protocol tcpdump printed (``TCP`` for a segment whose payload tcpdump does not
decode, ``HTTP`` when it prints an HTTP line, ``app:NTPv4`` for a UDP payload it decodes as
NTP, ``GREv0`` for a GRE packet, ...), so a protocol capsvc does not decode counts against
that protocol and not against IP or UDP.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from _corpora import packets_of

from capsvc.format._tcpdump import TcpdumpFormatter

#: The protocols whose agreement must be 100%.
LISTED = ("IP", "IP6", "TCP", "UDP", "ARP", "ICMP", "ICMPv6", "DNS", "HTTP", "802.11")
#: Link types whose every packet counts as ``802.11`` (802.11, 802.11 with radiotap), whatever
#: it carries: tcpdump's line starts with radiotap fields or 802.11 words, not a protocol name.
WLAN_LINKTYPES = (105, 127)
#: Packets left out of the listed protocols' figures, by (file, index): each with the reason.
EXCLUDED: dict[tuple[str, int], str] = {}

_STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} ")
_EXT = r"(?:HBH |DSTOPT |frag \(\d+\|\d+\) )"
_OWN_MARKERS = ("ip", "ip6", "tcp", "udp", "icmp", "icmp6", "domain", "frag6", "hbhopt", "dstopt")


def tcpdump_blocks(path: Path, *flags: str) -> list[str]:
    """What ``tcpdump -n FLAGS -r path`` prints (UTC), one text per packet."""
    if shutil.which("tcpdump") is None:
        raise RuntimeError("tcpdump is needed (apt-get install tcpdump)")
    out = subprocess.run(
        ["tcpdump", "-n", *flags, "-r", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        env={"TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    ).stdout
    blocks: list[str] = []
    for line in out.split("\n")[:-1]:
        if _STAMP.match(line) or line.startswith("[") or not blocks:
            blocks.append(line)
        else:
            blocks[-1] += "\n" + line
    return blocks


#: tcpdump flags the measure can be taken with -> TcpdumpFormatter keywords.
FLAG_OPTIONS: dict[str, dict[str, int | bool]] = {
    "-v": {"verbose": 1},
    "-vv": {"verbose": 2},
    "-e": {"link": True},
    "-q": {"quiet": True},
    "-S": {"absolute": True},
    "-x": {"hex": 1},
    "-X": {"hex_ascii": 1},
}


def our_blocks(path: Path, *flags: str) -> list[str]:
    """What capsvc's tcpdump format prints for every packet of ``path`` (UTC) with ``flags``
    (keys of ``FLAG_OPTIONS``)."""
    options: dict[str, int | bool] = {}
    for flag in flags:
        options.update(FLAG_OPTIONS[flag])
    formatters: dict[int, TcpdumpFormatter] = {}
    out = []
    for linktype, p in packets_of(path):
        formatter = formatters.setdefault(
            linktype,
            TcpdumpFormatter(linktype, utc=True, **options),  # type: ignore[arg-type]
        )
        out.append(formatter.format(p[0], p[1], p[2], p[3]))
    return out


def _ports(src: str, dst: str, v6: bool) -> list[str]:
    found = []
    for end in (src, dst):
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", end):
            continue
        if re.search(r"\.\d+$", end) and (not v6 or end.count(".") == 1):
            found.append(end.rsplit(".", 1)[1])
    return found


def protocol(block: str) -> str:
    """The protocol a tcpdump text is about: the innermost one it prints."""
    rest = _STAMP.sub("", block.split("\n", 1)[0]).replace("[Error converting time] ", "")
    if rest.startswith(("ARP, ", "RARP, ", " [|arp]")):
        return "ARP"
    m = re.match(r"IP6? (?:truncated-ip6? - \d+ bytes missing! ?)?(\S+) > (\S+): ?(.*)$", rest)
    if not m:
        if rest.startswith(("IP6 ", "IP6,")):
            return "IP6"
        if re.match(r"IP(\d| |,)", rest):
            return "IP"
        return rest.split(" ", 1)[0].rstrip(",:") or "?"
    v6 = rest.startswith("IP6")
    ip = "IP6" if v6 else "IP"
    src, dst, body = m.groups()
    ports = _ports(src, dst, v6)
    inner = re.sub(rf"^{_EXT}+", "", body)
    if inner != body and re.match(r"\d+ > \d+: ", inner):
        body = inner.split(": ", 1)[1]
        ports = ["0"]
    if body.startswith(("Flags [", "[|tcp]", "tcp ")):
        tail = re.sub(r"^.*?, length \d+", "", body, count=1) if ", length " in body else ""
        if tail.startswith(": HTTP"):
            return "HTTP"
        if tail.startswith(": ") and {"53", "5353"} & set(ports):
            return "DNS"
        if tail:
            word = re.sub(r"^[:,]? ?", "", tail).split(" ", 1)[0].strip("[|]:,")
            return "TCP:" + (word or "?")
        return "TCP"
    if body.startswith("ICMP6"):
        return "ICMPv6"
    if body.startswith(("ICMP ", " [|icmp]")):
        return "ICMP"
    if body.startswith(("UDP, ", "truncated-udp", " [|udp]")):
        return "UDP"
    dns_start = re.match(r"\d+", body) or body.startswith(("domain", " [|domain]"))
    if {"53", "5353"} & set(ports) and dns_start:
        return "DNS"
    marker = re.match(r" ?\[\|(\w+)\]", body)
    if marker and marker.group(1) not in _OWN_MARKERS:
        return "app:" + marker.group(1)
    if ports:
        return "app:" + (body.split(" ", 1)[0].strip("[|]:,(") or "?")
    if inner != body:
        if inner.startswith("ICMP6"):
            return "ICMPv6"
        if not inner or re.fullmatch(r" ?\[\|\w+\]", inner):
            return ip
        return f"{ip}:{inner.split(' ', 1)[0]}"
    ip_level = ("ip-proto-", " ip-proto-", "frag (", "[|ip", " [|ip", "no next header", "[length",
                "[version", "[remaining", " [remaining", "truncated-ip", "bad-")  # fmt: skip
    if not body or body.startswith(ip_level):
        return ip
    if body.startswith(("IP ", "IP6 ")):
        return f"{ip}-in-{body.split(' ')[0]}"
    return body.split(" ", 1)[0].strip("[|]:,(") or ip


@dataclass
class Agreement:
    """Packets compared, per protocol: how many, how many agree, and the ones that do not."""

    total: Counter[str] = field(default_factory=Counter)
    agree: Counter[str] = field(default_factory=Counter)
    differ: list[tuple[str, int, str, str, str]] = field(default_factory=list)
    counts_differ: list[tuple[str, int, int]] = field(default_factory=list)

    def share(self, name: str | None = None) -> float:
        """The share of packets that agree (of one protocol, or of all)."""
        if name is None:
            total, agree = sum(self.total.values()), sum(self.agree.values())
        else:
            total, agree = self.total[name], self.agree[name]
        return agree / total if total else 1.0


def measure(paths: Iterable[Path], *flags: str) -> Agreement:
    """Compare every packet of ``paths`` (tcpdump's text against capsvc's), both printed with
    ``flags``; a packet's protocol is read from tcpdump's text without flags."""
    result = Agreement()
    for path in paths:
        theirs, ours = tcpdump_blocks(path, *flags), our_blocks(path, *flags)
        plain = tcpdump_blocks(path) if flags else theirs
        wlan = [linktype in WLAN_LINKTYPES for linktype, _ in packets_of(path)]
        if len(theirs) != len(ours):
            result.counts_differ.append((path.name, len(ours), len(theirs)))
        for i, (mine, their) in enumerate(zip(ours, theirs, strict=False)):
            name = protocol(plain[i]) if i < len(plain) else protocol(their)
            if i < len(wlan) and wlan[i]:
                name = "802.11"
            if name in LISTED and (path.name, i) in EXCLUDED:
                continue
            result.total[name] += 1
            if mine == their:
                result.agree[name] += 1
            else:
                result.differ.append((path.name, i, name, mine, their))
    return result
