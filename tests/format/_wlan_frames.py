"""Hand-built 802.11 frames and radiotap headers, for comparing capsvc with tcpdump on cases the
corpora lack: every management subtype tcpdump names, each control frame, data frames of all
four DS-bit combinations through LLC/SNAP, protected frames, and radiotap fields one by one
(flags, rates, channel kinds, MCS and VHT, namespaces, an unknown bit, a field cut short).
"""

from __future__ import annotations

import struct
from pathlib import Path

A = bytes.fromhex("001122334455")
B = bytes.fromhex("66778899aabb")
C = bytes.fromhex("ccddeeff0011")
D = bytes.fromhex("020406080a0c")
#: An ICMP echo request in IPv4, behind an LLC/SNAP header.
SNAP_IP = (
    b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
    + bytes.fromhex("4500001c000040004001f9dec0a80001c0a80002")
    + bytes.fromhex("0800f7ff00000000")
)
_IES = b"\x00\x04test" + b"\x01\x04\x82\x84\x0b\x16" + b"\x03\x01\x06"


def write_pcap(path: Path, linktype: int, frames: list[bytes]) -> Path:
    """A pcap file of ``frames`` (one a second from 1000 s), each captured whole."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1000 + i, 0, len(frame), len(frame)))
            f.write(frame)
    return path


def _fc(kind: int, subtype: int, flags: int = 0) -> bytes:
    return bytes([subtype << 4 | kind << 2, flags])


def _mgmt(subtype: int, body: bytes, flags: int = 0) -> bytes:
    return _fc(0, subtype, flags) + b"\x3a\x01" + A + B + C + b"\x10\x00" + body


def _data(subtype: int, flags: int, body: bytes) -> bytes:
    four = D if flags & 3 == 3 else b""
    qos = b"\0\0" if subtype & 8 else b""
    return _fc(2, subtype, flags) + b"\0\0" + A + B + C + b"\0\0" + four + qos + body


def wlan_frames() -> list[bytes]:
    """802.11 frames (LINKTYPE_IEEE802_11)."""
    beacon_fixed = b"\0" * 8 + b"\x64\x00"
    return [
        _mgmt(8, beacon_fixed + b"\x11\x00" + _IES + b"\x72\x03msh"),
        _mgmt(8, beacon_fixed + b"\x02\x00" + b"\x00\x03a\x01c" + b"\x01\x00" + _IES[6:]),
        _mgmt(5, beacon_fixed + b"\x01\x00" + _IES),
        _mgmt(4, _IES),
        _mgmt(0, b"\x01\x00\x0a\x00" + _IES),
        _mgmt(2, b"\x01\x00\x0a\x00" + D + _IES),
        _mgmt(1, b"\x11\x00\x05\x00\x02\xc0" + _IES),
        _mgmt(3, b"\x01\x00\x00\x00\x03\xc0"),
        _mgmt(11, b"\x01\x00\x02\x00\x00\x00"),
        _mgmt(11, b"\x00\x00\x01\x00\x00\x00"),
        _mgmt(11, b"\x05\x00\x03\x00\x0d\x00"),
        _mgmt(12, b"\x03\x00"),
        _mgmt(10, b"\x08\x00"),
        _mgmt(12, b"\x63\x00"),
        _mgmt(13, b"\x03\x00\x01\x02"),
        _mgmt(13, b"\x0e\x01"),
        _mgmt(13, b"\xc8\x05"),
        _mgmt(9, b""),
        _mgmt(8, b"\0" * 8),
        _mgmt(8, beacon_fixed + b"\x11\x00" + b"\x00\x08abc"),
        _mgmt(8, beacon_fixed + b"\x11\x00" + b"\x00\x21" + b"x" * 33),
        _mgmt(4, b"\x01\x11" + bytes(range(1, 18))),
        _mgmt(11, b"\x01\x00", 0x40),
        _mgmt(11, b"\x01\x02\x03\x04", 0x40),
        _mgmt(6, b"\x01\x02"),
        _fc(1, 13) + b"\0\0" + A,
        _fc(1, 12) + b"\0\0" + A,
        _fc(1, 11) + b"\0\0" + A + B,
        _fc(1, 10) + b"\x01\xc0" + A + B,
        _fc(1, 8) + b"\0\0" + A + B + b"\x04\x00\x10\x00",
        _fc(1, 9) + b"\0\0" + A + B + b"\0" * 12,
        _fc(1, 14) + b"\0\0" + A + B,
        _fc(1, 15) + b"\0\0" + A + B,
        _fc(1, 7) + b"\0\0" + A + b"\0" * 6,
        _fc(1, 3) + b"\0\0" + A + B,
        _fc(1, 13) + b"\0\0" + A[:3],
        _data(0, 0, SNAP_IP),
        _data(0, 1, SNAP_IP),
        _data(0, 2, SNAP_IP),
        _data(0, 3, SNAP_IP),
        _data(8, 1, SNAP_IP),
        _data(1, 1, SNAP_IP),
        _data(3, 1, SNAP_IP),
        _data(0, 0x19, SNAP_IP),
        _data(4, 1, b""),
        _data(12, 1, b""),
        _data(0, 0x41, b"\x01\x02\x03\x20" + b"\0" * 12),
        _data(0, 0x41, b"\x01\x02"),
        _data(0, 0, b"\xaa\xaa\x03\x00\x00\x00\x86\xdd\x60" + b"\0" * 5),
        _data(
            0,
            0,
            b"\xaa\xaa\x03\x00\x00\x00\x08\x06"
            + bytes.fromhex("0001080006040001")
            + B
            + bytes(4)
            + A
            + bytes(4),
        ),
        _data(0, 0, b"\x10\x10\x03" + b"\0" * 10),
        _data(0, 0, b"\x06\x07\x13" + b"\0" * 4),
        _data(0, 0, b"\xff\xff" + bytes(28)),
        _data(0, 0, b"\xaa"),
        _fc(3, 0) + b"\0\0" + A,
        b"\x08",
    ]


def _radiotap(words: list[int], fields: list[tuple[int, bytes]]) -> bytes:
    header = bytearray(b"\0\0\0\0" + b"".join(struct.pack("<I", w) for w in words))
    for align, raw in fields:
        while len(header) % align:
            header.append(0)
        header += raw
    header[2:4] = struct.pack("<H", len(header))
    return bytes(header)


def radiotap_frames() -> list[bytes]:
    """Radiotap headers in front of an Acknowledgment, and of some of ``wlan_frames``."""
    ack = _fc(1, 13) + b"\0\0" + A
    chan = [(5180, 0x140), (2437, 0x480), (2437, 0xC0), (2437, 0x4C0), (5180, 0x4140),
            (5180, 0x8150), (2412, 0x880), (2412, 0xA0)]  # fmt: skip
    vht = struct.pack("<HBB4BBBH", 0x44, 0x04, 4, 0x92, 0, 0, 0, 1, 0, 0)
    headers = [
        _radiotap(
            [0x86F],
            [
                (8, struct.pack("<Q", 123)),
                (1, b"\x02"),
                (1, b"\x02"),
                (2, struct.pack("<HH", 2412, 0xA0)),
                (1, b"\xbd"),
                (1, b"\xa6"),
                (1, b"\x01"),
            ],
        ),
        *(_radiotap([0x2], [(1, bytes([f]))]) for f in (0x01, 0x04, 0x08, 0x40, 0xFF)),
        *(_radiotap([0x4], [(1, bytes([r]))]) for r in (0x85, 0x90, 0x0C)),
        *(_radiotap([0x8], [(2, struct.pack("<HH", f, c))]) for f, c in chan),
        _radiotap([0x10], [(1, b"\x03\x04")]),
        _radiotap([0x80], [(2, struct.pack("<H", 77))]),
        _radiotap([0x100], [(2, struct.pack("<H", 5))]),
        _radiotap([0x600], [(2, struct.pack("<H", 7)), (1, b"\x05")]),
        _radiotap([0x400], [(1, b"\xfb")]),
        _radiotap([0x1000], [(1, b"\x30")]),
        _radiotap([0x2000], [(1, b"\x05")]),
        _radiotap([0x4000], [(2, struct.pack("<H", 1))]),
        _radiotap([0x8000], [(2, struct.pack("<H", 1))]),
        _radiotap([0x40000], [(4, struct.pack("<IHBB", 0x100C0, 2412, 1, 30))]),
        _radiotap(
            [0x40008],
            [(2, struct.pack("<HH", 2412, 0xA0)), (4, struct.pack("<IHBB", 0x20140, 5180, 36, 30))],
        ),
        _radiotap([0x40000], [(4, struct.pack("<IHBB", 0x40140, 5180, 36, 30))]),
        *(
            _radiotap([0x80000], [(1, bytes(m))])
            for m in (
                [7, 1, 15],
                [0x3F, 0x7D, 33],
                [2, 0, 80],
                [3, 3, 5],
                [4, 4, 5],
                [7, 0, 32],
                [7, 5, 76],
            )
        ),
        _radiotap([0x80008], [(2, struct.pack("<HH", 5180, 0x140)), (1, bytes([7, 0, 3]))]),
        _radiotap([0x100000], [(4, struct.pack("<IHBB", 1, 2, 3, 4))]),
        _radiotap([0x200000], [(2, vht)]),
        _radiotap(
            [0x200000], [(2, struct.pack("<HBB4BBBH", 0x40, 0, 11, 0x91, 0x32, 0, 0, 2, 0, 0))]
        ),
        _radiotap([0x200008], [(2, struct.pack("<HH", 5180, 0x140)), (2, vht)]),
        _radiotap([0x80000001, 0x1], [(8, struct.pack("<Q", 5)), (8, struct.pack("<Q", 6))]),
        _radiotap([0xA0000002, 0x4], [(1, b"\x02"), (1, b"\x04")]),
        _radiotap(
            [0xC0000002, 0x1], [(1, b"\x02"), (2, b"\x00\x11\x22\x01\x02\x00"), (1, b"\xaa\xbb")]
        ),
        _radiotap([0x400000], [(8, bytes(12))]),
        _radiotap([0x20], [(1, b"\x05")]),
        _radiotap([0x1], []),
        _radiotap([0x80000000], []),
    ]
    frames = [h + ack for h in headers]
    frames.append(_radiotap([0x6], [(1, b"\x10"), (1, b"\x02")]) + ack + b"\x01\x02\x03\x04")
    frames.append(_radiotap([0x2], [(1, b"\x20")]) + _data(8, 1, b"\0\0" + SNAP_IP))
    frames.append(_radiotap([0x2], [(1, b"\x00")]) + _data(8, 0x81, b"\1\2\3\4" + SNAP_IP))
    frames += [_radiotap([0x2], [(1, b"\x00")]) + f for f in wlan_frames()[:16]]
    frames.append(b"\0\0\x05\0\0\0\0\0")
    frames.append(b"\0\0\x40\0\0\0\0\0")
    return frames
