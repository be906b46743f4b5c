"""A classic BPF interpreter for the tests that says when a program reads past the frame's end.

libpcap's bpf_filter answers 0 both for "rejected" and for "read past the end"; the differential
test needs to tell them apart to recognise frames too short for an expression, so it runs
libpcap's own (unoptimized) program here. Semantics follow libpcap's bpf_filter.c.
"""

from __future__ import annotations

from collections.abc import Sequence

M32 = 0xFFFFFFFF


#: Linux ancillary loads (SKF_AD_OFF + SKF_AD_VLAN_TAG, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT,
#: SKF_AD_OFF + SKF_AD_PKTTYPE, SKF_AD_OFF + SKF_AD_IFINDEX; linux/filter.h).
VLAN_TAG, VLAN_TAG_PRESENT = 0xFFFFF000 + 44, 0xFFFFF000 + 48
PKTTYPE, IFINDEX = 0xFFFFF000 + 4, 0xFFFFF000 + 8


def run(
    program: Sequence[tuple[int, int, int, int]],
    data: bytes,
    vlan_tci: int | None = None,
    wire_len: int | None = None,
    *,
    pkttype: int = 0,
    ifindex: int = 0,
) -> bool | None:
    """True/False as bpf_filter would answer, None when a load went past the end.

    ``vlan_tci`` is the 802.1Q tag the Linux kernel keeps in a packet's metadata (None: no tag
    there); absolute loads of SKF_AD_VLAN_TAG / SKF_AD_VLAN_TAG_PRESENT read it as the kernel
    does. ``wire_len`` is the packet's length on the wire, which ``ld #pktlen`` reads (default
    the frame's length). ``pkttype`` and ``ifindex`` are what the kernel's SKF_AD_PKTTYPE and
    SKF_AD_IFINDEX loads read (default 0: PACKET_HOST, no interface).
    """
    a = x = 0
    mem = [0] * 16
    pc = 0
    n = len(data)
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        cls = code & 0x07
        if cls in (0x00, 0x01):  # LD, LDX
            mode, size = code & 0xE0, {0x00: 4, 0x08: 2, 0x10: 1}.get(code & 0x18, 4)
            if mode == 0x00:
                value = k
            elif mode == 0x80:
                value = n if wire_len is None else wire_len
            elif mode == 0x60:
                value = mem[k]
            elif mode == 0xA0:  # ldxb 4*([k]&0xf)
                if k >= n:
                    return None
                value = (data[k] & 0xF) * 4
            elif mode == 0x20 and k == VLAN_TAG_PRESENT:
                value = int(vlan_tci is not None)
            elif mode == 0x20 and k == VLAN_TAG:
                value = vlan_tci or 0
            elif mode == 0x20 and k == PKTTYPE:  # at any width, as the kernel answers
                value = pkttype
            elif mode == 0x20 and k == IFINDEX:
                value = ifindex
            else:
                off = k + (x if mode == 0x40 else 0)
                if off + size > n:
                    return None
                value = int.from_bytes(data[off : off + size], "big")
            if cls == 0x00:
                a = value
            else:
                x = value
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op in (0x30, 0x90) and src == 0:
                return False
            a = _alu(op, a, src) & M32
        elif cls == 0x05:  # JMP
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x00:  # k sign-extended, as bpf_filter does for protochain's loop
                pc += k - (1 << 32) if k & 0x80000000 else k
                continue
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: a & src != 0}[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return (a if code & 0x18 == 0x10 else k) != 0
        else:  # MISC
            if code & 0xF8 == 0x80:
                a = x
            else:
                x = a


def _alu(op: int, a: int, src: int) -> int:
    if op == 0x00:
        return a + src
    if op == 0x10:
        return a - src
    if op == 0x20:
        return a * src
    if op == 0x30:
        return a // src
    if op == 0x40:
        return a | src
    if op == 0x50:
        return a & src
    if op == 0x60:
        return a << src if src < 32 else 0
    if op == 0x70:
        return a >> src if src < 32 else 0
    if op == 0x80:
        return -a
    if op == 0x90:
        return a % src
    return a ^ src
