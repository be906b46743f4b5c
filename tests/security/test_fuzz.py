"""Fuzzing the API of a real ``capsvc serve``: generated session specs, bodies and headers.

Whatever is sent, the answer is JSON with a status below 500, the service keeps answering,
and no file outside the output directory is created, changed or removed (the test compares
the tree around it before and after every example). Sessions that a generated spec starts
are deleted again at once.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _hostile import tree, udp_frames, write_pcap
from _served import Server, start, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=int(os.environ.get("CAPSVC_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

paths = st.sampled_from(
    [
        "a.pcap",
        "in.pcap",
        "../x.pcap",
        "/etc/passwd",
        "r-%D.pcap",
        "%Y/%m/%d.pcap",
        "sub/../../x",
        "sub/dir/x.txt",
        "x\x00y",
        "",
        ".",
        "link/x.pcap",
        "fifo",
        "a" * 300,
        "%" * 40,
    ]
) | st.text(max_size=30)

filters = st.sampled_from(
    [
        "",
        "udp",
        "tcp port 80 or udp and port 53",
        "ether src 02:00:00:00:00:01",
        "port",
        "ip[0] " + "+ 1 " * 1500 + "= 1",
        "(" * 2000 + "udp" + ")" * 2000,
        "vlan and vlan and udp",
        "not not not tcp",
    ]
) | st.text(max_size=40)

numbers = st.one_of(
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -0.0, 2**64, 10**400, 0.001]),
    json_values,
)


def optional(strategy: st.SearchStrategy[Any], *keys: str) -> st.SearchStrategy[dict[str, Any]]:
    """Dictionaries holding any subset of ``keys``, each valued by ``strategy``."""
    return st.fixed_dictionaries({}, optional={k: strategy for k in keys})


sources = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("file"), "path": paths},
        optional={"realtime": st.booleans() | json_values},
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["afpacket", "libpcap", "pfring", "raw", ""]),
            "interface": st.sampled_from(["lo", "cstnosuch0", "", "a/b", "x" * 20]) | json_values,
        },
        optional={
            "promisc": st.booleans() | json_values,
            "direction": st.sampled_from(["in", "out", "inout", "up"]) | json_values,
            "cooked": st.booleans() | json_values,
            "ring_size": numbers,
            "block_size": numbers,
            "block_timeout_ms": numbers,
            "userspace_fallback": st.booleans() | json_values,
            "timeout_ms": numbers,
            "immediate": json_values,
            "fanout": json_values,
            "bogus": json_values,
        },
    ),
    json_values,
)

sinks = st.fixed_dictionaries(
    {"type": st.sampled_from(["pcap", "pcapng", "text", "stats", "csv"]) | json_values},
    optional={
        "path": paths | json_values,
        "rotate_seconds": numbers,
        "rotate_mb": numbers,
        "max_files": numbers,
        "verbose": st.booleans() | json_values,
        "ascii": st.booleans() | json_values,
        "interval": numbers,
    },
)

specs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}\Z") | json_values,
        "source": sources,
        "filter": filters | json_values,
        "snaplen": numbers,
        "queue_size": numbers,
        "sinks": st.lists(sinks, max_size=3) | json_values,
        "duration": numbers,
        "autostart": st.booleans() | json_values,
        "workers": st.sampled_from([1, 0, -1, "2", 1.5]) | st.none(),
        "extra": json_values,
    },
)

# Mostly valid specs: file sessions with generated sinks, so that files do get created.
likely_specs = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z"),
        "source": st.fixed_dictionaries(
            {"type": st.just("file"), "path": st.sampled_from(["in.pcap", "link/x", "fifo"])}
        ),
        "sinks": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["pcap", "pcapng", "text", "stats"]), "path": paths},
                optional={"rotate_seconds": numbers, "rotate_mb": numbers, "max_files": numbers},
            ),
            max_size=3,
        ),
    },
    optional={"filter": filters, "snaplen": numbers, "duration": numbers},
)

header_names = st.sampled_from(
    ["Authorization", "Content-Type", "Content-Length", "Host", "Connection", "Accept"]
) | st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,15}\Z")
# Bytes a header value may hold on the wire (no CR, LF or NUL), ASCII and not.
header_values = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if c not in (0, 10, 13)).strip()
)
routes = st.sampled_from(
    [
        "/v1/sessions",
        "/v1/sessions/x",
        "/v1/sessions/x/stats",
        "/v1/sessions/x/pcap?filter=udp%20and",
        "/v1/capture?interface=cstnosuch0",
        "/v1/capture?interface=lo&duration=1e999",
        "/metrics",
        "/healthz",
        "/nosuch",
    ]
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """One ``capsvc serve`` for the module: max_duration 1 s, a capture file and a FIFO and a
    link to play with in its output directory."""
    where = tmp_path_factory.mktemp("fuzz")
    write_config(where / "capsvc.toml", "", service="max_duration = 1\nmax_sessions = 4")
    procs: list[subprocess.Popen[str]] = []
    srv = start(where, procs)
    out = where / "out"
    write_pcap(out / "in.pcap", udp_frames(20))
    os.mkfifo(out / "fifo")
    (where / "elsewhere").mkdir()
    (out / "link").symlink_to(where / "elsewhere")
    try:
        yield srv, where
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def request(srv: Server, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status < 500, (resp.status, data[:500])
    assert resp.getheader("Content-Type", "").startswith("application/json"), data[:200]
    return resp.status, json.loads(data)


def clean_up(srv: Server) -> None:
    status, listing = srv.call("GET", "/v1/sessions")
    assert status == 200
    for session in listing["sessions"]:
        srv.call("DELETE", f"/v1/sessions/{session['name']}")


def test_generated_session_specs(served: tuple[Server, Path]) -> None:
    """Specs of every shape, and mostly valid ones whose sinks get generated paths: some start
    (the search is not all refusals), none answers 5xx or touches anything outside."""
    srv, where = served
    headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}
    statuses: list[int] = []

    @FUZZ
    @given(spec=specs | likely_specs)
    def post(spec: dict[str, Any]) -> None:
        around = tree(where, skip=where / "out")
        status, _body = request(srv, "POST", "/v1/sessions", json.dumps(spec).encode(), headers)
        statuses.append(status)
        clean_up(srv)
        assert tree(where, skip=where / "out") == around
        assert srv.proc.poll() is None

    post()
    assert statuses.count(201) >= 5, statuses
    assert {400, 403, 409} <= set(statuses) or len(set(statuses)) >= 3, set(statuses)


@FUZZ
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_generated_bodies(served: tuple[Server, Path], body: bytes) -> None:
    srv, where = served
    around = tree(where, skip=where / "out")
    headers = {"Authorization": f"Bearer {srv.token}"}
    request(srv, "POST", "/v1/sessions", body, headers)
    clean_up(srv)
    assert tree(where, skip=where / "out") == around


@FUZZ
@given(
    route=routes,
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    extra=st.lists(st.tuples(header_names, header_values), max_size=5),
    token=st.sampled_from(["good", "none", "junk"]),
)
def test_generated_headers(
    served: tuple[Server, Path],
    route: str,
    method: str,
    extra: list[tuple[str, bytes]],
    token: str,
) -> None:
    """Raw requests with generated headers (bytes beyond ASCII and control bytes included): no
    5xx and no traceback in the log; every answer the service itself gives is JSON (the HTTP
    parser's own 400 for a request it cannot read at all is text)."""
    srv, _where = served
    logged = len(srv.lines)
    lines = [f"{method} {route} HTTP/1.1".encode(), b"Host: x", b"Connection: close"]
    if token == "good":
        lines.append(b"Authorization: Bearer " + srv.token.encode())
    elif token == "junk":
        lines.append(b"Authorization: Bearer \xff\xfe" + srv.token.encode()[:5])
    for name, value in extra:
        if name.lower() in ("content-length", "transfer-encoding", "connection", "host"):
            continue  # framing is the parser's, not the service's
        lines.append(name.encode() + b": " + value)
    lines.append(b"Content-Length: 0")
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if route.startswith("/v1/capture") and len(answer) > 24:
                break  # a capture stream: its status is what matters
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), answer[:200]
    status = int(status_line.split()[1])
    assert status < 500, answer[:500]
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    if status != 200 and not status_line.startswith(b"HTTP/1.0 400"):
        assert b"application/json" in head, answer[:300]
    clean_up(srv)
    assert srv.proc.poll() is None
    assert "Traceback" not in "".join(srv.lines[logged:])
