"""libpcap as the reference for the filter tests: compile on a dead handle, run, dump.

Uses capsvc's own ctypes binding (capsvc.sources.libpcap._ffi): pcap_open_dead + pcap_compile +
pcap_offline_filter give the verdict of libpcap's own program, bpf_filter runs a program capsvc
compiled (after bpf_validate accepts it). bpf_image (for the dump comparison) and bpf_validate
are declared here, on private handles.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from typing import Any

from capsvc.sources.libpcap._ffi import (
    bpf_insn,
    bpf_program,
    lib,
    pcap_pkthdr,
)


class OracleError(Exception):
    """libpcap refused the expression (its message)."""


class Compiled:
    """libpcap's program for one expression on one link type (freed by ``close``)."""

    def __init__(
        self, expr: str, dlt: int, *, optimize: bool = True, snaplen: int = 262144
    ) -> None:
        # The netmask is 0, as tcpdump passes when it reads a file: "ip broadcast" then means
        # 0.0.0.0 or 255.255.255.255 (capsvc's reading), instead of an error.
        so = lib()
        self._so = so
        handle = so.pcap_open_dead(dlt, snaplen)
        self.prog = bpf_program()
        try:
            rc = so.pcap_compile(handle, ctypes.byref(self.prog), expr.encode(), int(optimize), 0)
            if rc != 0:
                raise OracleError(so.pcap_geterr(handle).decode(errors="replace"))
        finally:
            so.pcap_close(handle)
        self._hdr = pcap_pkthdr()

    def instructions(self) -> list[tuple[int, int, int, int]]:
        p = self.prog
        return [
            (p.bf_insns[i].code, p.bf_insns[i].jt, p.bf_insns[i].jf, p.bf_insns[i].k)
            for i in range(p.bf_len)
        ]

    def verdicts(self, packets: Sequence[bytes], wire: Sequence[int] | None = None) -> list[bool]:
        """pcap_offline_filter on each frame (caplen = the frame's length, len = its length on
        the wire: ``wire`` or the same)."""
        flt = self._so.pcap_offline_filter
        hdr = self._hdr
        ref, prog = ctypes.byref(hdr), ctypes.byref(self.prog)
        out = []
        for i, data in enumerate(packets):
            hdr.caplen = len(data)
            hdr.len = len(data) if wire is None else wire[i]
            out.append(flt(prog, ref, data) != 0)
        return out

    def close(self) -> None:
        self._so.pcap_freecode(ctypes.byref(self.prog))


def run_program(
    program: Sequence[tuple[int, int, int, int]],
    packets: Sequence[bytes],
    wire: Sequence[int] | None = None,
) -> list[bool]:
    """Run a classic BPF program through libpcap's interpreter (bpf_filter) on each frame
    (``wire``: each frame's length on the wire, which ``len`` reads; default its length).

    Raises:
        OracleError: libpcap's bpf_validate refuses the program (a jump past the end, a
            scratch word out of range, an unknown opcode, no return at the end...), as the
            kernel would refuse to attach it.
    """
    arr = (bpf_insn * len(program))(*[bpf_insn(c, t, f, k) for c, t, f, k in program])
    if not _bpf_validate()(arr, len(program)):
        raise OracleError(f"bpf_validate refuses the program of {len(program)} instructions")
    run = lib().bpf_filter
    return [
        run(arr, data, len(data) if wire is None else wire[i], len(data)) != 0
        for i, data in enumerate(packets)
    ]


@functools.cache
def _bpf_image() -> Any:
    # char *bpf_image(const struct bpf_insn *p, int n);
    fn = ctypes.CDLL(lib()._name).bpf_image
    fn.argtypes = [ctypes.POINTER(bpf_insn), ctypes.c_int]
    fn.restype = ctypes.c_char_p
    return fn


@functools.cache
def _bpf_validate() -> Any:
    # int bpf_validate(const struct bpf_insn *f, int len);
    fn = ctypes.CDLL(lib()._name).bpf_validate
    fn.argtypes = [ctypes.POINTER(bpf_insn), ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def validate(program: Sequence[tuple[int, int, int, int]]) -> bool:
    """Whether libpcap's bpf_validate accepts the program."""
    arr = (bpf_insn * len(program))(*[bpf_insn(c, t, f, k) for c, t, f, k in program])
    return bool(_bpf_validate()(arr, len(program)))


def libpcap_dump(expr: str, dlt: int, optimize: bool = True) -> str:
    """libpcap's own ``tcpdump -d`` text of its program (via bpf_image)."""
    c = Compiled(expr, dlt, optimize=optimize)
    try:
        image = _bpf_image()
        p = c.prog
        return "\n".join(image(ctypes.byref(p.bf_insns[i]), i).decode() for i in range(p.bf_len))
    finally:
        c.close()
