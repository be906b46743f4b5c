"""IPsec and routing protocols above IP in tcpdump's words: AH and ESP headers (print-ah.c,
print-esp.c, without decryption secrets), OSPFv2 and OSPFv3 summaries (print-ospf.c,
print-ospf6.c without ``-v``) and EIGRP's message type (print-eigrp.c without ``-v``).

Pure module. ``AH(spi=0x00000100,seq=0xf,icv=0x...): `` and then the protected packet;
``ESP(spi=0x12345678,seq=0x1), length 172``; ``OSPFv2, Hello, length 44``.
"""

from __future__ import annotations

from ._nd import Cut, Nd

__all__ = ["ah_print", "eigrp_print", "esp_print", "ospf_print"]

_OSPF_TYPES = {1: "Hello", 2: "Database Description", 3: "LS-Request", 4: "LS-Update",
               5: "LS-Ack"}  # fmt: skip


def ah_print(nd: Nd, pos: int) -> int:
    """Print the AH header at ``pos``; its length (what the protected packet follows)."""
    nd.proto = "ah"
    nd.put("AH")
    size = nd.u8(pos + 1)
    total = (size + 2) * 4
    nd.put("(")
    if nd.opts.verbose:
        nd.put(f"length={size}({total}-bytes),")
    reserved = nd.u16(pos + 2)
    if reserved:
        nd.put(f"reserved=0x{reserved:x}[MustBeZero],")
    nd.put(f"spi=0x{nd.u32(pos + 4):08x},seq=0x{nd.u32(pos + 8):x},icv=0x")
    nd.need(pos + 12, total - 12)
    nd.put(nd.data[pos + 12 : pos + total].hex())
    nd.put("): ")
    return total


def esp_print(nd: Nd, pos: int, length: int) -> None:
    """The ESP header at ``pos`` (its payload is encrypted: only spi and seq are printed)."""
    nd.proto = "esp"
    if pos + 8 >= nd.end:
        raise Cut
    nd.put(f"ESP(spi=0x{nd.u32(pos):08x},seq=0x{nd.u32(pos + 4):x}), length {length}")


def ospf_print(nd: Nd, pos: int, length: int, version: int) -> None:
    """An OSPF packet's version, type and length."""
    nd.proto = "ospf2" if version == 4 else "ospf3"
    kind = nd.u8(pos + 1)
    name = _OSPF_TYPES.get(kind, f"unknown LS-type {kind}" if version == 4 else f"type {kind}")
    nd.put(f"OSPFv{nd.u8(pos)}, {name}, length {length}")


_EIGRP_OPCODES = {1: "Update", 2: "Request", 3: "Query", 4: "Reply", 5: "Hello", 6: "IPX SAP",
                  10: "Probe"}  # fmt: skip


def eigrp_print(nd: Nd, pos: int, length: int) -> None:
    """An EIGRP packet's message type and length."""
    nd.proto = "eigrp"
    version = nd.u8(pos)
    if version != 2:
        nd.put(f"EIGRP version {version} packet not supported")
        return
    opcode = nd.u8(pos + 1)
    nd.put(f"EIGRP {_EIGRP_OPCODES.get(opcode, f'unknown ({opcode})')}, length: {length}")
