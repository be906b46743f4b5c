"""QUIC long headers, and the server name of a client's Initial packet.

Pure module (no IO); nothing here raises. ``quic_header`` reads a long header (RFC 9000 17.2:
form and type bits, version, connection IDs, an Initial's token and length). ``initial_sni``
removes the header protection of a client Initial and decrypts it with the keys every QUIC
endpoint derives from the Destination Connection ID (RFC 9001 5.2, RFC 9369 for version 2),
then reads the CRYPTO frames at offset 0 as a TLS ClientHello and returns its server name.

The AES operations need the ``cryptography`` package (``pip install capsvc[quic]``); without it
``initial_sni`` returns None and the line shows the header only. HKDF is the standard library's
HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

from ._annotate import client_hello_sni

__all__ = ["QUIC_VERSIONS", "QuicHeader", "initial_sni", "quic_header"]

#: Versions whose long-header layout and packet types capsvc knows: name, Initial salt, the
#: label prefix of their key derivation, and the packet type numbers in order Initial, 0-RTT,
#: Handshake, Retry.
QUIC_VERSIONS: dict[int, tuple[str, bytes, str, tuple[int, int, int, int]]] = {
    0x00000001: ("v1", bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), "quic",
                 (0, 1, 2, 3)),
    0x6B3343CF: ("v2", bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), "quicv2",
                 (1, 2, 3, 0)),
}  # fmt: skip
_TYPE_NAMES = ("Initial", "0-RTT", "Handshake", "Retry")
_CRYPTO_FRAME, _PADDING, _PING = 0x06, 0x00, 0x01
#: An ACK frame with more ranges than this ends the reading (no Initial needs as many).
_MAX_ACK_RANGES = 64


class QuicHeader(NamedTuple):
    """A QUIC long header. ``kind`` is the packet type's name (``Initial``, ``0-RTT``,
    ``Handshake``, ``Retry``, ``Version Negotiation``, or ``type N`` of an unknown version);
    ``pn_offset`` where an Initial's packet number starts and ``length`` its Length field
    (both -1 for other packets)."""

    version: int
    kind: str
    dcid: bytes
    scid: bytes
    token_len: int
    pn_offset: int
    length: int


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    if pos >= end:
        return None
    size = 1 << (data[pos] >> 6)
    if pos + size > end:
        return None
    value = data[pos] & 0x3F
    for i in range(1, size):
        value = value << 8 | data[pos + i]
    return value, pos + size


def quic_header(data: bytes, pos: int, end: int) -> QuicHeader | None:
    """Read the long header at ``pos``; None when it is no long header (form bit clear, fixed
    bit clear for a known version) or it is cut before its connection IDs end."""
    if end - pos < 7 or not data[pos] & 0x80:
        return None
    first = data[pos]
    version = int.from_bytes(data[pos + 1 : pos + 5], "big")
    known = QUIC_VERSIONS.get(version)
    if version and (known is None or not first & 0x40):
        return None
    at = pos + 5
    dlen = data[at]
    if dlen > 20 or at + 1 + dlen >= end:
        return None
    dcid = data[at + 1 : at + 1 + dlen]
    at += 1 + dlen
    slen = data[at]
    if slen > 20 or at + 1 + slen > end:
        return None
    scid = data[at + 1 : at + 1 + slen]
    at += 1 + slen
    if not version:
        return QuicHeader(0, "Version Negotiation", dcid, scid, 0, -1, -1)
    assert known is not None
    kind = _TYPE_NAMES[known[3].index(first >> 4 & 3)]
    if kind != "Initial":
        return QuicHeader(version, kind, dcid, scid, 0, -1, -1)
    token = _varint(data, at, end)
    if token is None or token[1] + token[0] > end:
        return QuicHeader(version, kind, dcid, scid, -1, -1, -1)
    length = _varint(data, token[1] + token[0], end)
    if length is None:
        return QuicHeader(version, kind, dcid, scid, token[0], -1, -1)
    return QuicHeader(version, kind, dcid, scid, token[0], length[1], length[0])


def _expand_label(secret: bytes, label: str, size: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 7.1) with an empty context, SHA-256; ``size`` <= 32."""
    full = b"tls13 " + label.encode()
    info = size.to_bytes(2, "big") + bytes([len(full)]) + full + b"\0"
    return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:size]


def _client_keys(version: int, dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, iv, hp) of the client's Initial packets on a connection with this ``dcid``."""
    _name, salt, prefix, _types = QUIC_VERSIONS[version]
    initial = hmac.new(salt, dcid, hashlib.sha256).digest()
    client = _expand_label(initial, "client in", 32)
    return (
        _expand_label(client, f"{prefix} key", 16),
        _expand_label(client, f"{prefix} iv", 12),
        _expand_label(client, f"{prefix} hp", 16),
    )


def _crypto_data(plain: bytes) -> bytes:
    """The CRYPTO frame bytes of a decrypted Initial payload, contiguous from offset 0."""
    chunks: dict[int, bytes] = {}
    pos, end = 0, len(plain)
    while pos < end:
        kind = plain[pos]
        if kind in (_PADDING, _PING):
            pos += 1
            continue
        if kind in (2, 3):  # ACK: largest, delay, range count, first range, ranges, [ECN]
            at = pos + 1
            values = []
            for _ in range(4):
                got = _varint(plain, at, end)
                if got is None:
                    return b""
                values.append(got[0])
                at = got[1]
            if values[2] > _MAX_ACK_RANGES:
                return b""
            for _ in range(2 * values[2] + (3 if kind == 3 else 0)):
                got = _varint(plain, at, end)
                if got is None:
                    return b""
                at = got[1]
            pos = at
            continue
        if kind != _CRYPTO_FRAME:
            break
        offset = _varint(plain, pos + 1, end)
        if offset is None:
            break
        size = _varint(plain, offset[1], end)
        if size is None or size[1] + size[0] > end:
            break
        chunks[offset[0]] = plain[size[1] : size[1] + size[0]]
        pos = size[1] + size[0]
    out = b""
    while len(out) in chunks:
        piece = chunks.pop(len(out))
        if not piece:
            break
        out += piece
    return out


def initial_sni(data: bytes, pos: int, end: int, header: QuicHeader) -> str | None:
    """The server name of the client Initial at ``pos`` (its header read as ``header``), or
    None: not a client Initial, cut by the capture, not decryptable with the client keys of
    its DCID (a server's Initial), no ``cryptography`` package, or no SNI in what this packet
    carries of the ClientHello."""
    if header.kind != "Initial" or header.pn_offset < 0:
        return None
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        return None
    pn = header.pn_offset
    stop = pn + header.length
    if stop > end or pn + 20 > stop:
        return None
    key, iv, hp = _client_keys(header.version, header.dcid)
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = encryptor.update(bytes(data[pn + 4 : pn + 20])) + encryptor.finalize()
    first = data[pos] ^ (mask[0] & 0x0F)
    pn_len = (first & 3) + 1
    number = bytes(data[pn + i] ^ mask[1 + i] for i in range(pn_len))
    aad = bytes([first]) + bytes(data[pos + 1 : pn]) + number
    nonce = bytes(a ^ b for a, b in zip(iv, bytes(12 - pn_len) + number, strict=True))
    try:
        plain = AESGCM(key).decrypt(nonce, bytes(data[pn + pn_len : stop]), aad)
    except (InvalidTag, ValueError):
        return None
    crypto = _crypto_data(plain)
    if len(crypto) < 4 or crypto[0] != 1:
        return None
    return client_hello_sni(crypto, 4, len(crypto))
