"""PTP (IEEE 1588) version 2 in tcpdump's words (print-ptp.c): the common header's fields and
each message type's timestamps, over Ethernet (ethertype 0x88f7) and UDP (ports 319, 320).

Pure module. ``PTPv2, v1 compat : no, msg type : sync msg, length : 44, domain : 0, ...``.
"""

from __future__ import annotations

from ._nd import Nd

__all__ = ["ptp_print"]

_MSG_TYPES = {0x0: "sync msg", 0x1: "delay req msg", 0x2: "peer delay req msg",
              0x3: "peer delay resp msg", 0x8: "follow up msg", 0x9: "delay resp msg",
              0xA: "pdelay resp fup msg", 0xB: "announce msg", 0xC: "signaling msg",
              0xD: "management msg"}  # fmt: skip
_CONTROLS = {0: "Sync", 1: "Delay_Req", 2: "Follow_Up", 3: "Delay_Resp", 4: "Management",
             5: "Other"}  # fmt: skip
_FLAGS = ((0x1, "l1 61"), (0x2, "l1 59"), (0x4, "utc reasonable"), (0x8, "timescale"),
          (0x10, "time tracable"), (0x20, "frequency tracable"), (0x100, "alternate master"),
          (0x200, "two step"), (0x400, "unicast"), (0x1000, "profile specific 1"),
          (0x2000, "profile specific 2"), (0x4000, "security mask"))  # fmt: skip
_HEADER = 34


def _u48(nd: Nd, pos: int) -> int:
    nd.need(pos, 6)
    return int.from_bytes(nd.data[pos : pos + 6], "big")


def _u64(nd: Nd, pos: int) -> int:
    nd.need(pos, 8)
    return int.from_bytes(nd.data[pos : pos + 8], "big")


def ptp_print(nd: Nd, pos: int, length: int) -> None:
    """The PTP message at ``pos`` of ``length`` bytes."""
    nd.proto = "ptp"
    nd.put("PTP")
    if length < _HEADER:
        nd.put(f"[length {length} < {_HEADER}] (invalid)")
        return
    major = nd.u16(pos) & 0x0F
    nd.put(f"v{major}")
    if major == 1:
        nd.put(" (not implemented)")
        return
    if major != 2:
        nd.put(" (unsupported)")
        return
    first = nd.u8(pos)
    kind = first & 0x0F
    flags = nd.u16(pos + 6)
    names = ", ".join(name for bit, name in _FLAGS if flags & bit) or "none"
    control = nd.u8(pos + 32)
    nd.put(
        f", v1 compat : {'yes' if first & 0x10 else 'no'}"
        f", msg type : {_MSG_TYPES.get(kind, 'Reserved')}, length : {nd.u16(pos + 2)}"
        f", domain : {nd.u8(pos + 4)}, reserved1 : {nd.u8(pos + 5)}, Flags [{names}]"
        f", NS correction : {_u48(nd, pos + 8)}, sub NS correction : {nd.u16(pos + 14)}"
        f", reserved2 : {nd.u32(pos + 16)}, clock identity : 0x{_u64(nd, pos + 20):x}"
        f", port id : {nd.u16(pos + 28)}, seq id : {nd.u16(pos + 30)}"
        f", control : {control} ({_CONTROLS.get(control, 'Reserved')})"
        f", log message interval : {nd.u8(pos + 33)}"
    )
    body = pos + _HEADER
    if kind in (0x0, 0x1):
        _stamp(nd, body, "originTimeStamp")
    elif kind == 0x8:
        _stamp(nd, body, "preciseOriginTimeStamp")
    elif kind in (0x2, 0xA):
        _stamp(nd, body, "preciseOriginTimeStamp")
        _port(nd, body + 10)
    elif kind in (0x3, 0x9):
        _stamp(nd, body, "receiveTimeStamp")
        _port(nd, body + 10)
    elif kind == 0xB:
        _announce(nd, body)
    elif kind == 0xC:
        _port(nd, body)
    elif kind == 0xD:
        _port(nd, body)
        nd.put(
            f", , start boundary hops  {nd.u8(body + 10)}, , boundary hops  {nd.u8(body + 11)}"
            f", , flags  0x{nd.u8(body + 12):x}, , reserved  0x{nd.u8(body + 13):x}"
        )


def _stamp(nd: Nd, pos: int, name: str) -> None:
    nd.put(f", {name} : {_u48(nd, pos)} seconds, {nd.u32(pos + 6)} nanoseconds")


def _port(nd: Nd, pos: int) -> None:
    nd.put(f", port identity : 0x{_u64(nd, pos):x}, port id : {nd.u16(pos + 8)}")


def _announce(nd: Nd, pos: int) -> None:
    nd.put(f", originTimeStamp : {_u48(nd, pos)} seconds {nd.u32(pos + 6)} nanoseconds")
    nd.put(
        f", origin cur utc :{nd.u16(pos + 10)}, rsvd : {nd.u8(pos + 12)}"
        f", gm priority_1 : {nd.u8(pos + 13)}, gm clock class : {nd.u8(pos + 14)}"
        f", gm clock accuracy : {nd.u8(pos + 15)}, gm clock variance : {nd.u16(pos + 16)}"
        f", gm priority_2 : {nd.u8(pos + 18)}, gm clock id : 0x{_u64(nd, pos + 19):x}"
        f", steps removed : {nd.u16(pos + 27)}, time source : 0x{nd.u8(pos + 29):x}"
    )
