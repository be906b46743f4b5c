"""Payload annotations of the text log (HTTP, TLS, SSH) and the ASCII rendering of payloads.

Pure module. The rule it keeps: an annotation is recognised by the payload's own bytes, never by
port alone, reads only inside ``data[start:end]`` and returns None rather than guessing or raising
when the bytes are not what it looks for. DNS lives in ``_dns`` (it is recognised by port).

What is recognised, and how it prints:
- HTTP: a request line (``GET / HTTP/1.1``) or a status line (``HTTP/1.1 200 OK``); a line the
  capture cuts before its end ends with ``[|http]`` (``[|tls]``, ``[|ssh]`` likewise).
- TLS: ``TLS ClientHello, SNI example.com``, ``TLS ServerHello, TLSv1.3``, ``TLS Alert fatal
  handshake_failure`` (``TLS Alert (encrypted)`` when it is protected), ``TLS Handshake``.
- SSH: the version banner (``SSH-2.0-OpenSSH_9.6``).
"""

from __future__ import annotations

import struct

__all__ = [
    "ANNOTATED_FIRST_BYTES",
    "ASCII_INDENT",
    "annotate_tcp",
    "ascii_lines",
    "client_hello_sni",
    "first_line",
]

#: Each ASCII line of ``-A`` output starts with this, so packet lines stay easy to pick out.
ASCII_INDENT = "  "
#: At most this many bytes of a first line are shown.
_LINE_MAX = 256
_U16 = struct.Struct("!H").unpack_from

_HTTP_METHODS = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"HTTP/1.",
    b"HTTP/2 ",
)

#: The words that name a payload, and the longest: a payload the capture cuts inside one is
#: marked rather than ignored.
_CUT_WORDS = (*_HTTP_METHODS, b"SSH-")
_METHOD_MAX = max(len(w) for w in _CUT_WORDS)
#: Printable ASCII and space stay, everything else (tabs, CR, bytes >= 0x7f) becomes "." ...
_PRINTABLE = bytes(b if 32 <= b < 127 else 0x2E for b in range(256))
#: ... and for multi-line ASCII output, LF stays too.
_PRINTABLE_LF = bytes(b if 32 <= b < 127 or b == 10 else 0x2E for b in range(256))

TLS_VERSIONS = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}
TLS_ALERT_LEVELS = {1: "warning", 2: "fatal"}
TLS_ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}
_TLS_HANDSHAKE = 0x16
_TLS_ALERT = 0x15
#: The first payload bytes ``annotate_tcp`` can recognise (callers skip it for the others).
ANNOTATED_FIRST_BYTES = frozenset(
    [_TLS_HANDSHAKE, _TLS_ALERT, ord("S")] + [method[0] for method in _HTTP_METHODS]
)
_EXT_SERVER_NAME = 0
_EXT_SUPPORTED_VERSIONS = 43


def first_line(data: bytes, start: int, end: int) -> str:
    """The text of the line starting at ``start`` (up to CR/LF, at most 256 bytes), with
    non-printable bytes shown as ``.``."""
    stop = min(end, start + _LINE_MAX)
    nl = data.find(b"\n", start, stop)
    if nl >= 0:
        stop = nl - 1 if nl > start and data[nl - 1] == 13 else nl
    return data[start:stop].translate(_PRINTABLE).decode("ascii")


def annotate_tcp(data: bytes, start: int, end: int, cut: bool = False) -> str | None:
    """Recognise an application message at the start of a TCP payload.

    Args:
        data: the buffer (usually the whole frame).
        start: where the payload starts.
        end: where the captured payload ends.
        cut: the capture ends before the segment does (snaplen): a message read up to ``end``
            without reaching what it shows ends with ``[|http]``, ``[|tls]`` or ``[|ssh]``.

    Returns:
        The annotation, or None when the payload is none of HTTP, TLS or SSH.
    """
    if start >= end:
        return None
    first = data[start]
    if cut and end - start < _METHOD_MAX and _is_cut_word(data[start:end]):
        return "[|ssh]" if b"SSH-".startswith(data[start:end]) else "[|http]"
    if first in (_TLS_HANDSHAKE, _TLS_ALERT):
        return _tls(data, start, end, cut)
    if first == 0x53 and data.startswith(b"SSH-", start, end):
        return _line_or_cut(data, start, end, cut, "ssh")
    if 0x43 <= first <= 0x54:  # C D G H O P T: the first letters of the methods and "HTTP/"
        for method in _HTTP_METHODS:
            if data.startswith(method, start, end):
                return _line_or_cut(data, start, end, cut, "http")
    return None


def _is_cut_word(head: bytes) -> bool:
    """Whether ``head`` is the start of an HTTP method or status line or an SSH banner, cut
    before the word that names it ends."""
    return any(word.startswith(head) and word != head for word in _CUT_WORDS)


def _line_or_cut(data: bytes, start: int, end: int, cut: bool, proto: str) -> str:
    """The first line, with the ``[|proto]`` marker when the capture cut it before its end."""
    text = first_line(data, start, end)
    if cut and end - start < _LINE_MAX and data.find(b"\n", start, end) < 0:
        return f"{text} [|{proto}]"
    return text


def _tls(data: bytes, start: int, end: int, cut: bool) -> str | None:
    if end - start < 5:
        # Too short to tell a record from other bytes, unless the capture cut it.
        if cut and (end - start < 2 or data[start + 1] == 3):
            return "TLS [|tls]"
        return None
    if data[start + 1] != 3 or data[start + 2] > 4:
        return None
    kind = data[start]
    record_len = data[start + 3] << 8 | data[start + 4]
    whole = start + 5 + record_len <= end
    if kind == _TLS_ALERT:
        if record_len == 2 and end - start >= 7:
            level = TLS_ALERT_LEVELS.get(data[start + 5], str(data[start + 5]))
            desc = TLS_ALERTS.get(data[start + 6], str(data[start + 6]))
            return f"TLS Alert {level} {desc}"
        if record_len == 2 and cut:
            return "TLS Alert [|tls]"
        return "TLS Alert (encrypted)"
    if end - start < 6:
        return "TLS Handshake [|tls]" if cut else "TLS Handshake"
    msg = data[start + 5]
    stop = min(end, start + 5 + record_len)
    if msg == 1:
        name = client_hello_sni(data, start + 9, stop)
        if name:
            return f"TLS ClientHello, SNI {name}"
        return "TLS ClientHello [|tls]" if cut and not whole else "TLS ClientHello"
    if msg == 2:
        version = _server_hello_version(data, start + 9, stop)
        text = f"TLS ServerHello, {version}" if version else "TLS ServerHello"
        return f"{text} [|tls]" if cut and not whole else text
    return "TLS Handshake"


def _extensions(data: bytes, pos: int, stop: int) -> dict[int, tuple[int, int]]:
    """Map extension type -> (offset, length) of the extensions block at ``pos``."""
    found: dict[int, tuple[int, int]] = {}
    if pos + 2 > stop:
        return found
    ext_end = min(stop, pos + 2 + (data[pos] << 8 | data[pos + 1]))
    pos += 2
    while pos + 4 <= ext_end:
        kind, size = data[pos] << 8 | data[pos + 1], data[pos + 2] << 8 | data[pos + 3]
        found.setdefault(kind, (pos + 4, size))
        pos += 4 + size
    return found


def client_hello_sni(data: bytes, pos: int, stop: int) -> str | None:
    """The server name in the ClientHello body at ``pos`` (its client_version) up to ``stop``,
    or None when it has none or it is cut before the name."""
    # version(2) random(32) session_id<1> cipher_suites<2> compression<1> extensions<2>
    pos += 34
    if pos >= stop:
        return None
    pos += 1 + data[pos]
    if pos + 2 > stop:
        return None
    pos += 2 + (data[pos] << 8 | data[pos + 1])
    if pos >= stop:
        return None
    pos += 1 + data[pos]
    sni = _extensions(data, pos, stop).get(_EXT_SERVER_NAME)
    if sni is None:
        return None
    pos, size = sni
    # server_name_list<2>: name_type(1) host_name<2>
    if size < 5 or pos + 5 > stop or data[pos + 2] != 0:
        return None
    name_len = data[pos + 3] << 8 | data[pos + 4]
    name_end = min(stop, pos + 5 + name_len)
    return data[pos + 5 : name_end].translate(_PRINTABLE).decode("ascii") or None


def _server_hello_version(data: bytes, pos: int, stop: int) -> str | None:
    if pos + 2 > stop:
        return None
    legacy = data[pos] << 8 | data[pos + 1]
    # version(2) random(32) session_id<1> cipher_suite(2) compression(1) extensions<2>
    ext = pos + 34
    if ext < stop:
        ext += 1 + data[ext] + 3
        chosen = _extensions(data, ext, stop).get(_EXT_SUPPORTED_VERSIONS)
        if chosen is not None and chosen[1] == 2 and chosen[0] + 2 <= stop:
            legacy = data[chosen[0]] << 8 | data[chosen[0] + 1]
    return TLS_VERSIONS.get(legacy)


def ascii_lines(data: bytes, start: int, end: int) -> str:
    """Render ``data[start:end]`` for ``-A`` output.

    Args:
        data: the buffer.
        start: where the payload starts.
        end: where the captured payload ends.

    Returns:
        One ``"\\n" + ASCII_INDENT + text`` per payload line (split at LF, a CR before it dropped),
        non-printable bytes as ``.``; empty for an empty payload. No trailing newline.
    """
    if start >= end:
        return ""
    text = data[start:end].replace(b"\r\n", b"\n").translate(_PRINTABLE_LF).decode("ascii")
    if text.endswith("\n"):
        text = text[:-1]
    return "\n" + ASCII_INDENT + text.replace("\n", "\n" + ASCII_INDENT)
