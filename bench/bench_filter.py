"""Speed of the filter language: matches per second against libpcap, and compile time.

Measures, in one process, on a mixed Ethernet corpus (TCP/UDP/ICMP over IPv4 and IPv6, VLAN
tags, ARP, fragments, non-IP frames):
- matches/s of ``parse_filter(expr, ETHERNET).match`` for three expressions (a simple one, a
  host/port one, and a 10-term one), against libpcap's ``pcap_offline_filter`` on the same frames
  and the same expression text, called from a small C loop that this script compiles with the
  system compiler against libpcap-dev (the ratio is ours / libpcap's). The earlier peer, the same
  call through ctypes from a Python loop, is still reported beside it: its time is mostly the
  ctypes call, not the filter, so it made capsvc look faster than it is;
- the time to parse, parse + compile the Python matcher, and parse + ``compile_bpf`` two
  50-term expressions (a mixed and/or/not one, and 50 ``host`` alternatives) against the
  issue's 5 ms target and against libpcap's ``pcap_compile`` of the same text, in the same run;
- the same for a 69 KB expression of 2000 ``(host a.b.c.d and port N)`` alternatives (CPU
  seconds: the matcher, ``compile_bpf`` alone, and both as the service compiles them), against
  libpcap's ``pcap_compile`` (one round: it takes tens of seconds). Its BPF program is longer
  than the kernel's 4096 instructions, so ``compile_bpf`` ends in that error, as libpcap's
  program would be refused by the kernel.

Medians of ``--rounds`` rounds. Prints a markdown table; ``--json`` prints the figures.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capsvc import LinkType
from capsvc.filter import FilterCompileError, compile_bpf, parse, parse_filter
from capsvc.sources.libpcap._ffi import (
    PCAP_NETMASK_UNKNOWN,
    bpf_program,
    lib,
    pcap_pkthdr,
)

EXPRESSIONS = {
    "tcp port 443": "tcp port 443",
    "host/port": "host 10.0.0.1 and (port 80 or port 443) and not port 22",
    "10 terms": (
        "(tcp port 443 or udp port 53 or icmp) and not host 10.9.9.9 and "
        "(net 10.0.0.0/8 or net 192.168.0.0/16) and not port 22 and greater 40 and not arp "
        "and not tcp[tcpflags] & tcp-rst != 0"
    ),
}
#: The libpcap peer: load a pcap file into memory, compile the expression as tcpdump would
#: (optimised, netmask unknown), then time ``rounds`` rounds of pcap_offline_filter over every
#: frame (each round makes enough passes over the corpus to last about 50 ms, so the clock's
#: resolution does not matter). Prints one line per round: nanoseconds, frames filtered, frames
#: matched in one pass.
C_LOOP = r"""
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 4) { fprintf(stderr, "usage: FILE EXPR ROUNDS\n"); return 2; }
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    size_t cap = 1024, n = 0;
    struct pcap_pkthdr *hdrs = malloc(cap * sizeof *hdrs);
    u_char **data = malloc(cap * sizeof *data);
    struct pcap_pkthdr *h;
    const u_char *d;
    while (pcap_next_ex(p, &h, &d) == 1) {
        if (n == cap) {
            cap *= 2;
            hdrs = realloc(hdrs, cap * sizeof *hdrs);
            data = realloc(data, cap * sizeof *data);
        }
        hdrs[n] = *h;
        data[n] = malloc(h->caplen);
        memcpy(data[n], d, h->caplen);
        n++;
    }
    struct bpf_program prog;
    if (pcap_compile(p, &prog, argv[2], 1, PCAP_NETMASK_UNKNOWN) != 0) {
        fprintf(stderr, "%s\n", pcap_geterr(p));
        return 1;
    }
    int rounds = atoi(argv[3]);
    size_t passes = n ? 2000000 / n + 1 : 1;
    for (int r = 0; r < rounds; r++) {
        struct timespec t0, t1;
        size_t matched = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t k = 0; k < passes; k++)
            for (size_t i = 0; i < n; i++)
                matched += pcap_offline_filter(&prog, &hdrs[i], data[i]) != 0;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        printf("%lld %zu %zu\n", ns, n * passes, matched / passes);
    }
    pcap_freecode(&prog);
    pcap_close(p);
    return 0;
}
"""

TARGET = 2_000_000  # matches/s required for the first two expressions
COMPILE_TARGET_MS = 5.0  # parse + compile of a 50-term expression


def _ip4(src: str, dst: str, proto: int, payload: bytes, frag: int = 0x4000) -> bytes:
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0, s, d)
        + payload
    )


def _ip6(nh: int, payload: bytes) -> bytes:
    return (
        struct.pack(
            "!IHBB16s16s",
            0x60000000,
            len(payload),
            nh,
            64,
            b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01",
            bytes(15) + b"\x01",
        )
        + payload
    )


def _tcp(sport: int, dport: int, flags: int = 0x18) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 65535, 0, 0) + b"p" * 20


def _udp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHHH", sport, dport, 28, 0) + b"q" * 20


def _eth(ethertype: int, payload: bytes, vlan: int | None = None) -> bytes:
    head = b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a"
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", ethertype) + payload


def corpus(count: int = 2000, seed: int = 5) -> list[bytes]:
    """A mixed Ethernet corpus (the same for the same seed)."""
    rng = random.Random(seed)
    hosts = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.7", "172.16.0.9", "10.9.9.9"]
    ports = [443, 443, 80, 22, 8080, 53, 5353, 40000, 51234]
    out = []
    for _ in range(count):
        r = rng.random()
        src, dst = rng.choice(hosts), rng.choice(hosts)
        sp, dp = rng.choice(ports), rng.choice(ports)
        if r < 0.45:
            out.append(
                _eth(0x0800, _ip4(src, dst, 6, _tcp(sp, dp, rng.choice([2, 0x10, 0x18, 4]))))
            )
        elif r < 0.60:
            out.append(_eth(0x0800, _ip4(src, dst, 17, _udp(sp, dp))))
        elif r < 0.70:
            out.append(_eth(0x86DD, _ip6(6, _tcp(sp, dp))))
        elif r < 0.74:
            out.append(_eth(0x86DD, _ip6(17, _udp(sp, dp))))
        elif r < 0.79:
            out.append(_eth(0x0800, _ip4(src, dst, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01")))
        elif r < 0.84:
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(6) + bytes(4) + bytes(10)
            out.append(_eth(0x0806, arp))
        elif r < 0.92:
            out.append(_eth(0x0800, _ip4(src, dst, 6, _tcp(sp, dp)), vlan=100))
        elif r < 0.96:
            out.append(_eth(0x0800, _ip4(src, dst, 6, _tcp(sp, dp), frag=0x2010)))
        else:
            out.append(_eth(0x88CC, bytes(40)))
    return out


def _rate(func: object, frames: list[bytes], rounds: int) -> float:
    """Median matches/s of ``func`` over ``frames``."""
    assert callable(func)
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for frame in frames:
            func(frame)
        samples.append(time.perf_counter() - t0)
    return len(frames) / statistics.median(samples)


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    """``frames`` as a microsecond Ethernet pcap file, for the C loop to load."""
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for i, frame in enumerate(frames):
        parts.append(struct.pack("<IIII", 1_700_000_000, i % 1_000_000, len(frame), len(frame)))
        parts.append(frame)
    path.write_bytes(b"".join(parts))


class CLoop:
    """The C peer, compiled once into a temporary directory (``cc -O2 ... -lpcap``)."""

    def __init__(self, workdir: Path, frames: list[bytes]) -> None:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise SystemExit("bench_filter.py needs a C compiler (cc) and libpcap-dev")
        source, self.binary = workdir / "filter_loop.c", workdir / "filter_loop"
        source.write_text(C_LOOP)
        built = subprocess.run(
            [compiler, "-O2", "-o", str(self.binary), str(source), "-lpcap"],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise SystemExit(f"compiling the libpcap loop failed (libpcap-dev?):\n{built.stderr}")
        self.frames = workdir / "corpus.pcap"
        _write_pcap(self.frames, frames)

    def rate(self, expr: str, rounds: int) -> tuple[float, int]:
        """(median matches/s, frames matched) of libpcap over the corpus."""
        out = subprocess.run(
            [str(self.binary), str(self.frames), expr, str(rounds)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs = [tuple(int(x) for x in line.split()) for line in out.splitlines()]
        ns = statistics.median(r[0] for r in runs)
        return runs[0][1] / (ns / 1e9), runs[0][2]


class _Libpcap:
    """libpcap's program for one expression, run through ctypes from a Python loop."""

    def __init__(self, expr: str, dlt: int = 1) -> None:
        self.so = lib()
        handle = self.so.pcap_open_dead(dlt, 262144)
        self.prog = bpf_program()
        rc = self.so.pcap_compile(
            handle, ctypes.byref(self.prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN
        )
        self.so.pcap_close(handle)
        if rc != 0:
            raise RuntimeError(f"libpcap cannot compile {expr!r}")
        self.hdr = pcap_pkthdr()

    def matcher(self) -> object:
        flt, hdr = self.so.pcap_offline_filter, self.hdr
        prog, ref = ctypes.byref(self.prog), ctypes.byref(self.hdr)

        def match(frame: bytes) -> bool:
            hdr.caplen = hdr.len = len(frame)
            return bool(flt(prog, ref, frame) != 0)

        return match

    def close(self) -> None:
        self.so.pcap_freecode(ctypes.byref(self.prog))


def fifty_terms(seed: int = 3) -> str:
    rng = random.Random(seed)
    kinds = [
        "tcp port {}",
        "host 10.0.{}.1",
        "udp dst port {}",
        "net 10.{}.0.0/16",
        "src portrange {}-{}",
        "icmp[icmptype] = {}",
        "ip6 host 2001:db8::{:x}",
    ]
    terms = []
    for _ in range(50):
        n = rng.randrange(1, 250)
        terms.append(rng.choice(kinds).format(n, n + 5))
    return " or ".join(f"({terms[i]} and not {terms[i + 1]})" for i in range(0, 50, 2))


def fifty_hosts() -> str:
    """50 ``host`` alternatives."""
    return " or ".join(f"host 10.0.{i}.1" for i in range(50))


def two_thousand_terms() -> str:
    """The 69 KB expression of 2000 ``(host a.b.c.d and port N)`` alternatives."""
    return " or ".join(f"(host 10.{i // 250}.{i % 250}.1 and port {1000 + i})" for i in range(2000))


def _cpu_s(func: object, rounds: int) -> float:
    """Median CPU seconds of ``func(round)`` (CPU time: other work on the machine counts less)."""
    assert callable(func)
    samples = []
    for i in range(rounds):
        t0 = time.process_time()
        func(i)
        samples.append(time.process_time() - t0)
    return statistics.median(samples)


def _bpf_or_too_long(expr: str) -> None:
    try:
        compile_bpf(expr, max_length=0)
    except FilterCompileError as exc:
        assert "4096" in exc.reason
    else:
        raise AssertionError("the 2000-term program fits the kernel?")


def big_compile(rounds: int) -> dict[str, float]:
    """CPU seconds to compile the 2000-term expression (a fresh text each round, so nothing
    compiled before is reused across rounds)."""
    big = two_thousand_terms()

    def text(i: int) -> str:
        return big + " " * (i + 1)

    def both(i: int) -> None:
        parse_filter(text(i) + " ", LinkType.ETHERNET, max_length=0)
        _bpf_or_too_long(text(i) + " ")

    return {
        "parse": _cpu_s(lambda i: parse(text(i), max_length=0), rounds),
        "parse+matcher": _cpu_s(
            lambda i: parse_filter(text(i) + "\t", LinkType.ETHERNET, max_length=0), rounds
        ),
        "parse+compile_bpf": _cpu_s(lambda i: _bpf_or_too_long(text(i) + "\n"), rounds),
        "matcher and compile_bpf": _cpu_s(both, rounds),
        "libpcap pcap_compile": _cpu_s(lambda i: _Libpcap(big).close(), 1),
    }


def _compile_ms(func: object, rounds: int) -> float:
    assert callable(func)
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        func()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def measure(rounds: int, count: int) -> dict[str, object]:
    frames = corpus(count)
    rows = []
    with tempfile.TemporaryDirectory(prefix="capsvc-bench-") as tmp:
        c_loop = CLoop(Path(tmp), frames)
        for name, expr in EXPRESSIONS.items():
            ours = parse_filter(expr, LinkType.ETHERNET)
            assert ours is not None
            # libpcap gets the expression as the user wrote it, not capsvc's normalised text.
            ref = _Libpcap(expr)
            theirs = ref.matcher()
            verdicts = [ours.match(f) for f in frames]
            if verdicts != [bool(theirs(f)) for f in frames]:  # type: ignore[operator]
                raise SystemExit(f"capsvc and libpcap disagree on {expr!r}")
            our_rate = _rate(ours.match, frames, rounds)
            ctypes_rate = _rate(theirs, frames, rounds)
            ref.close()
            c_rate, c_matched = c_loop.rate(expr, rounds)
            if c_matched != sum(verdicts):
                raise SystemExit(
                    f"the C loop matched {c_matched} for {expr!r}, capsvc {sum(verdicts)}"
                )
            rows.append(
                {
                    "name": name,
                    "expr": expr,
                    "ours": our_rate,
                    "libpcap": c_rate,
                    "ratio": our_rate / c_rate,
                    "libpcap_ctypes": ctypes_rate,
                    "ratio_ctypes": our_rate / ctypes_rate,
                    "matched": sum(verdicts) / len(frames),
                }
            )
    compile_rows = {}
    bpf_len = {}
    for name, big in (("mixed", fifty_terms()), ("hosts", fifty_hosts())):
        theirs = _Libpcap(big)
        bpf_len[name] = (len(compile_bpf(big)), int(theirs.prog.bf_len))
        theirs.close()
        compile_rows[name] = {
            "parse": _compile_ms(lambda big=big: parse(big), rounds * 4),
            "parse+matcher": _compile_ms(
                lambda big=big: parse_filter(big, LinkType.ETHERNET), rounds * 4
            ),
            "parse+compile_bpf": _compile_ms(lambda big=big: compile_bpf(big), rounds * 4),
            "libpcap pcap_compile": _compile_ms(lambda big=big: _Libpcap(big).close(), rounds * 4),
        }
    return {
        "frames": len(frames),
        "rounds": rounds,
        "match": rows,
        "compile_ms": compile_rows,
        "bpf_len": bpf_len,
        "big_compile_s": big_compile(max(3, rounds // 2)),
    }


def table(result: dict[str, object]) -> str:
    lines = [
        f"Mixed Ethernet corpus of {result['frames']} frames, median of {result['rounds']} rounds.",
        "",
        "| expression | capsvc matches/s | libpcap, C loop matches/s | ratio "
        "| old peer: libpcap via ctypes matches/s | old ratio | frames matched |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["match"]:  # type: ignore[attr-defined]
        lines.append(
            f"| `{row['expr']}` | {row['ours']:,.0f} | {row['libpcap']:,.0f} | "
            f"{row['ratio']:.2f}x | {row['libpcap_ctypes']:,.0f} | {row['ratio_ctypes']:.1f}x "
            f"| {row['matched']:.0%} |"
        )
    lines += [
        "",
        "The libpcap figure is now pcap_offline_filter called from a C loop (compiled by the "
        "bench with the system compiler against libpcap-dev) over the same frames, with the "
        "expression as written. The old peer called it through ctypes from a Python loop, "
        "where the call costs more than the filter; its figures stay here for one release.",
    ]
    compile_ms: dict[str, dict[str, float]] = result["compile_ms"]  # type: ignore[assignment]
    bpf_len: dict[str, tuple[int, int]] = result["bpf_len"]  # type: ignore[assignment]
    lines += [
        "",
        f"Parse + compile of 50-term expressions, median ms (target < {COMPILE_TARGET_MS:g} ms):",
        "",
        "| 50-term expression | parse | parse+matcher | parse+compile_bpf "
        "| libpcap pcap_compile | matcher / libpcap | BPF length (libpcap) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in compile_ms.items():
        cells = []
        for stage in ("parse", "parse+matcher", "parse+compile_bpf"):
            ms = row[stage]
            cells.append(f"{ms:.2f}" + ("" if ms < COMPILE_TARGET_MS else " (over)"))
        ours, theirs = bpf_len[name]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {row['libpcap pcap_compile']:.2f} "
            f"| {row['parse+matcher'] / row['libpcap pcap_compile']:.2f}x | {ours} ({theirs}) |"
        )
    lines += [
        "",
        "Where the time goes (cProfile of parse_filter on the mixed expression): the parse is "
        "about a fifth (the tokenizer the largest part of it), lowering to the IR and "
        "factoring shared tests about two fifths, generating and compiling the Python "
        "source the rest (the built-in compile alone about a tenth); no single function "
        "takes more than a tenth. Its 25 port, portrange and host terms each expand to every "
        "IPv4 and IPv6 transport they may be in (about 270 field tests in all, as libpcap's "
        "own program of 418 instructions does), and each test is Python work at compile "
        "time where libpcap's is C.",
    ]
    big: dict[str, float] = result["big_compile_s"]  # type: ignore[assignment]
    lines += [
        "",
        "Compile of the 69 KB expression of 2000 `(host a.b.c.d and port N)` terms, median CPU "
        "seconds (target well under 1 s; its BPF program exceeds the kernel's 4096 "
        "instructions, so compile_bpf ends in that error):",
        "",
        "| parse | parse+matcher | parse+compile_bpf | matcher and compile_bpf "
        "| libpcap pcap_compile (1 round) |",
        "|---:|---:|---:|---:|---:|",
        "| " + " | ".join(f"{big[k]:.2f}" for k in big) + " |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=20000, help="frames in the corpus")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.rounds, args.count)
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    main()
