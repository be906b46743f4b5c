"""test_differential's comparison with libpcap, at a cost mutation testing can pay per mutant.

The same check as ``test_matcher_and_bpf_equal_libpcap`` (``_differences``: our matcher and our
BPF program give libpcap's verdict on every frame, but the documented differences, and the
program is at most twice as long as libpcap's), with two changes that leave capsvc's side as it
is and make libpcap's side cheap:

- libpcap's answers (``pcap_compile`` + ``pcap_offline_filter`` on every frame, the length of
  its program, or its refusal) are asked once and kept in a file under ``CAPSVC_TEST_CACHE``
  (default: ``capsvc-test-cache`` in the temporary directory), named by a hash of libpcap's
  version, the link type, the expressions as libpcap is given them, the frames and their wire
  lengths: any change of these asks libpcap afresh. Where a verdict differs, whether the frame
  is too short for the expression is still asked of libpcap live, as test_differential does.
- our BPF program runs in capsvc's own C interpreter (``capsvc._speedups.bpf_filter``, which
  ``test_bpf_c.py`` holds against libpcap's ``bpf_filter``), which refuses a malformed program
  (a jump past the end, a scratch slot out of range, no return at the end) with ValueError,
  as the kernel would refuse it.

And fewer expressions: all of ``_exprs`` on the link types whose lowering differs most
(Ethernet, raw IP, Linux cooked v2, 802.11 with radiotap), a different quarter of them on each
other link type, libpcap's own test expressions (``_testrun``) on their link types (a quarter
of the 802.11 ones, most of which differ only by a type or subtype name), and the large
expressions on Ethernet. scripts/mutation.sh runs this instead of test_differential.py for the
filter group (docs/testing.md, "Mutation testing"); the full comparison stays in the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _exprs import EXPRESSIONS, LARGE
from _oracle import OracleError
from _packets import captured
from _testrun import TESTRUN
from test_differential import (
    MAX_SHORT_DIFFERENCES,
    Reference,
    ReferenceOf,
    _differences,
    libpcap_text,
    live_reference,
)

from capsvc._accel import speedups
from capsvc._bpf import pack_program
from capsvc._packet import LinkType
from capsvc.filter import FILTER_LINKTYPES, BpfInstruction
from capsvc.sources.libpcap._ffi import lib

_C = speedups()
pytestmark = pytest.mark.skipif(_C is None, reason="capsvc._speedups is not built")

#: Link types given every expression of _exprs; the others get a quarter each.
FULL = (LinkType.ETHERNET, LinkType.RAW, LinkType.LINUX_SLL2, LinkType.IEEE802_11_RADIO)
FRAMES_PER_LINKTYPE = 300
#: More _testrun expressions than this for one link type: a quarter of them are taken.
TESTRUN_KEPT_WHOLE = 100


def selected(linktype: LinkType) -> list[str]:
    """The expressions checked on ``linktype``: see the module's docstring."""
    order = sorted(FILTER_LINKTYPES)
    exprs = list(EXPRESSIONS) if linktype in FULL else EXPRESSIONS[order.index(linktype) % 4 :: 4]
    testrun = [e for lt, e in TESTRUN if lt == linktype]
    if len(testrun) > TESTRUN_KEPT_WHOLE:
        testrun = testrun[::4]
    if linktype == LinkType.ETHERNET:
        exprs += LARGE
    return exprs + testrun


def _cache_dir() -> Path:
    return Path(
        os.environ.get("CAPSVC_TEST_CACHE") or Path(tempfile.gettempdir()) / "capsvc-test-cache"
    )


def cached_reference(
    linktype: LinkType, exprs: Sequence[str], frames: list[bytes], wire: list[int]
) -> ReferenceOf:
    """libpcap's answers for ``exprs`` on ``frames``, from the cache file (made first when it
    is absent or unreadable). The returned function answers as ``live_reference`` does (for
    other frames or an expression not recorded it asks libpcap live)."""
    texts = sorted({libpcap_text(e) for e in exprs if e.strip()})
    version = lib().pcap_lib_version().decode(errors="replace")
    digest = hashlib.sha256(
        json.dumps([version, int(linktype), texts, [f.hex() for f in frames], wire]).encode()
    ).hexdigest()[:32]
    path = _cache_dir() / f"libpcap-verdicts-{digest}.json"
    table: dict[str, list[object]]
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
        for text in texts:
            try:
                ref = live_reference(text, linktype, frames, wire)
            except OracleError as exc:
                table[text] = [str(exc), "0", 0]
                continue
            bits = sum(1 << i for i, v in enumerate(ref.verdicts) if v)
            table[text] = [None, f"{bits:x}", ref.length]
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_text(json.dumps(table))
        partial.replace(path)  # atomic: concurrent runs write the same content

    def reference(text: str, lt: LinkType, pk: list[bytes], wl: list[int]) -> Reference:
        entry = table.get(text)
        if entry is None or lt != linktype or pk is not frames or wl is not wire:
            return live_reference(text, lt, pk, wl)
        refused, bits, length = entry
        if refused is not None:
            raise OracleError(str(refused))
        mask = int(str(bits), 16)
        return Reference([bool(mask >> i & 1) for i in range(len(pk))], int(str(length)))

    return reference


def c_run(program: Sequence[BpfInstruction], frames: list[bytes], wire: list[int]) -> list[bool]:
    """Each frame's verdict by capsvc's C interpreter of classic BPF.

    Raises:
        ValueError: the program is no valid classic BPF program.
    """
    assert _C is not None
    code = pack_program(program)
    run = _C.bpf_filter
    return [run(code, f, w) != 0 for f, w in zip(frames, wire, strict=True)]


@pytest.mark.parametrize("linktype", sorted(FILTER_LINKTYPES), ids=lambda lt: lt.name)
def test_matcher_and_bpf_equal_cached_libpcap(linktype: LinkType) -> None:
    """As test_differential's test_matcher_and_bpf_equal_libpcap, with libpcap's answers
    cached and our programs run in C. Kills, in mutation testing, what the full comparison
    kills: a wrong offset, comparison, jump or constant in the lowering or the BPF back-end
    that changes a verdict on one frame, a program that grows past twice libpcap's length,
    and a malformed program (ValueError from the C checker)."""
    frames = captured(linktype, FRAMES_PER_LINKTYPE)
    exprs = selected(linktype)
    reference = cached_reference(linktype, exprs, frames[0], frames[2])
    problems, tolerated, _ = _differences(linktype, frames, exprs, reference, c_run)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    assert tolerated <= MAX_SHORT_DIFFERENCES * 2 * len(exprs) * len(frames[0])


def test_the_cache_holds_libpcaps_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached answer is libpcap's own (verdicts, length, refusal), made once and then read
    back from the file rather than asked again."""
    monkeypatch.setenv("CAPSVC_TEST_CACHE", str(tmp_path))
    frames, _, wire = captured(LinkType.ETHERNET, 40)
    exprs = ["tcp port 80", "udp", "ip6 and icmp6", "wlan type mgt", ""]
    first = cached_reference(LinkType.ETHERNET, exprs, frames, wire)
    (made,) = tmp_path.iterdir()
    for expr in ("tcp port 80", "udp", "ip6 and icmp6"):
        assert first(expr, LinkType.ETHERNET, frames, wire) == live_reference(
            expr, LinkType.ETHERNET, frames, wire
        )
    with pytest.raises(OracleError):
        first("wlan type mgt", LinkType.ETHERNET, frames, wire)
    stamp = made.stat().st_mtime_ns
    again = cached_reference(LinkType.ETHERNET, exprs, frames, wire)
    assert made.stat().st_mtime_ns == stamp and list(tmp_path.iterdir()) == [made]
    assert again("udp", LinkType.ETHERNET, frames, wire) == first(
        "udp", LinkType.ETHERNET, frames, wire
    )
    # Other frames: another file.
    cached_reference(LinkType.ETHERNET, exprs, frames[:-1], wire[:-1])
    assert len(list(tmp_path.iterdir())) == 2


def test_the_c_interpreter_refuses_a_malformed_program() -> None:
    """What stands in for the kernel's checker here: a jump past the end is a ValueError."""
    with pytest.raises(ValueError, match="not a valid classic BPF program"):
        c_run([BpfInstruction(0x15, 5, 5, 0), BpfInstruction(0x06, 0, 0, 0)], [b"x"], [1])
