"""Service configuration: defaults, every validation error naming file, key and problem."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from capsvc.service import (
    ConfigError,
    PathOutsideError,
    ServiceSettings,
    SessionSpec,
    SinkSpec,
    load_config,
    parse_config,
    parse_session_spec,
)

ROOT = Path(__file__).resolve().parents[2]


def session(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "s1", "source": {"type": "afpacket", "interface": "lo"}}
    base.update(overrides)
    return base


def test_defaults_listen_on_loopback_only(tmp_path: Path) -> None:
    config = parse_config({}, origin="c.toml", cwd=str(tmp_path))
    assert config.service.listen == "127.0.0.1:8321"
    assert config.service.host_port == ("127.0.0.1", 8321)
    assert config.service.unix_socket is None
    assert config.service.output_dir == str(tmp_path / "captures")
    assert config.sessions == ()


def test_full_session_parses() -> None:
    spec = parse_session_spec(
        session(
            snaplen=128,
            queue_size=1000,
            duration=5,
            autostart=False,
            workers=2,
            source={"type": "afpacket", "interface": "eth0", "direction": "in", "ring_size": 4096},
            sinks=[
                {"type": "pcap", "path": "a/b.pcap", "rotate_seconds": 60, "max_files": 3},
                {"type": "text", "path": "t.log", "verbose": True},
                {"type": "stats", "interval": 0.5},
            ],
        )
    )
    assert spec.snaplen == 128 and spec.queue_size == 1000 and spec.duration == 5.0
    assert spec.workers == 2 and not spec.autostart
    assert spec.source.direction == "in" and dict(spec.source.options) == {"ring_size": 4096}
    assert [s.type for s in spec.sinks] == ["pcap", "text", "stats"]
    assert spec.sinks[0].path == "a/b.pcap" and spec.sinks[0].max_files == 3
    assert spec.sinks[2].path == ""


def test_unix_socket_listen(tmp_path: Path) -> None:
    config = parse_config({"service": {"listen": "unix:run/c.sock"}}, cwd=str(tmp_path))
    assert config.service.unix_socket == str(tmp_path / "run/c.sock")


BAD_SERVICE = [
    ({"listen": "localhost"}, "service.listen", "host:port"),
    ({"listen": "127.0.0.1:99999"}, "service.listen", "host:port"),
    ({"listen": "unix:"}, "service.listen", "socket path"),
    ({"max_sessions": 0}, "service.max_sessions", "at least 1"),
    ({"max_sessions": "3"}, "service.max_sessions", "integer"),
    ({"max_duration": -1}, "service.max_duration", "between 0 and"),
    ({"max_duration": 1e300}, "service.max_duration", "between 0 and"),
    ({"max_filter_bytes": 0}, "service.max_filter_bytes", "between 1 and"),
    ({"idle_timeout": 0}, "service.idle_timeout", "greater than 0"),
    ({"max_connections": 0}, "service.max_connections", "between 1 and"),
    ({"input_dir": ""}, "service.input_dir", "empty"),
    ({"max_subscribers": 1.5}, "service.max_subscribers", "integer"),
    ({"output_dir": ""}, "service.output_dir", "empty"),
    ({"colour": "red"}, "service.colour", "unknown key"),
    ({"metrics_auth": "no"}, "service.metrics_auth", "true or false"),
    ({"file_mode": 640}, "service.file_mode", 'write it as "0640"'),  # decimal 640 = 0o1200
    ({"file_mode": "rw-r-----"}, "service.file_mode", "octal digits"),
    ({"file_mode": "0400"}, "service.file_mode", "owner must keep read and write"),
    ({"file_mode": 0o750}, "service.file_mode", "not executable"),
    ({"file_mode": True}, "service.file_mode", "expected a mode"),
    ({"file_group": "a:b"}, "service.file_group", "no group name"),
    ({"file_group": -1}, "service.file_group", "no group id"),
    ({"conversations": 1}, "service.conversations", "true or false"),
    ({"conversation_entries": 0}, "service.conversation_entries", "between 1 and 65536"),
    ({"series_seconds": 0}, "service.series_seconds", "between 1 and 86400"),
    ({"metrics_top": 101}, "service.metrics_top", "between 0 and 100"),
    ({"max_recorder_bytes": -1}, "service.max_recorder_bytes", "between 0 and"),
]


@pytest.mark.parametrize(("table", "key", "problem"), BAD_SERVICE)
def test_bad_service_table(table: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"service": table}, origin="conf.toml")
    assert info.value.origin == "conf.toml"
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(f"conf.toml: {key}: ")


BAD_SESSIONS = [
    ({"name": None}, "session[0].name", "missing"),
    ({"name": "../x"}, "session[0].name", "not a valid name"),
    ({"name": "-x"}, "session[0].name", "not a valid name"),
    ({"name": "a" * 65}, "session[0].name", "not a valid name"),
    ({"source": None}, "session[0].source", "missing"),
    ({"source": "lo"}, "session[0].source", "must be a table"),
    ({"source": {"type": "raw"}}, "session[0].source.type", "unknown source type"),
    ({"source": {"type": "afpacket"}}, "session[0].source.interface", "interface name"),
    ({"source": {"type": "afpacket", "interface": "a/b"}}, "session[0].source.interface", "name"),
    (
        {"source": {"type": "afpacket", "interface": "lo", "direction": "up"}},
        "session[0].source.direction",
        "inout",
    ),
    (
        {"source": {"type": "afpacket", "interface": "lo", "promisc": 1}},
        "session[0].source.promisc",
        "true or false",
    ),
    (
        {"source": {"type": "afpacket", "interface": "lo", "fanout": 3}},
        "session[0].source.fanout",
        "unknown key",  # set by the service (workers), never by a spec
    ),
    (
        {"source": {"type": "afpacket", "interface": "lo", "ring": [1]}},
        "session[0].source.ring",
        "unknown key",
    ),
    (
        {"source": {"type": "afpacket", "interface": "lo", "bogus": 1}},
        "session[0].source.bogus",
        "unknown key (known: block_size",
    ),
    (
        {"source": {"type": "afpacket", "interface": "lo", "cooked": "x"}},
        "session[0].source.cooked",
        "true or false",
    ),
    (
        {"source": {"type": "afpacket", "interface": "lo", "ring_size": -1}},
        "session[0].source.ring_size",
        "between 0 and",
    ),
    (
        {"source": {"type": "libpcap", "interface": "lo", "immediate": 1}},
        "session[0].source.immediate",
        "true or false",
    ),
    ({"filter": "tcp or " * 20000 + "udp"}, "session[0].filter", "longer than 65536 bytes"),
    ({"source": {"type": "file"}}, "session[0].source.path", "missing"),
    ({"snaplen": -1}, "session[0].snaplen", "between 0 and 262144"),
    ({"snaplen": 300000}, "session[0].snaplen", "between 0 and 262144"),
    ({"queue_size": "big"}, "session[0].queue_size", "integer"),
    ({"duration": "1h"}, "session[0].duration", "number"),
    ({"autostart": "yes"}, "session[0].autostart", "true or false"),
    ({"workers": 0}, "session[0].workers", "between 1 and 64"),
    (
        {"workers": 2, "source": {"type": "libpcap", "interface": "lo"}},
        "session[0].workers",
        "afpacket",
    ),
    ({"sinks": {"type": "pcap"}}, "session[0].sinks", "array"),
    ({"sinks": [{"type": "csv", "path": "x"}]}, "session[0].sinks[0].type", "unknown sink type"),
    ({"sinks": [{"type": "pcap"}]}, "session[0].sinks[0].path", "missing"),
    (
        {"sinks": [{"type": "pcap", "path": "x", "verbose": True}]},
        "session[0].sinks[0].verbose",
        "unknown key",
    ),
    (
        {"sinks": [{"type": "pcap", "path": "x", "rotate_mb": -2}]},
        "session[0].sinks[0].rotate_mb",
        "between 0 and",
    ),
    (
        {"sinks": [{"type": "pcap", "path": "x", "rotate_seconds": 1e300}]},
        "session[0].sinks[0].rotate_seconds",
        "between 0 and 1e+09",
    ),
    ({"duration": 1e300}, "session[0].duration", "between 0 and"),
    ({"duration": 10**400}, "session[0].duration", "between 0 and"),
    ({"sinks": [{"type": "stats", "interval": 0}]}, "session[0].sinks[0].interval", "greater"),
    ({"sinks": [{"type": "text", "path": "."}]}, "session[0].sinks[0].path", "directory"),
    ({"bogus": 1}, "session[0].bogus", "unknown key"),
    ({"conversations": "on"}, "session[0].conversations", "true or false"),
    ({"series": 0}, "session[0].series", "true or false"),
    ({"workers": 2, "series": True}, "session[0].series", "workers = 1"),
    (
        {"sinks": [{"type": "recorder", "seconds": 0}]},
        "session[0].sinks[0].seconds",
        "greater than 0",
    ),
    (
        {"sinks": [{"type": "recorder", "max_bytes": 4096}]},
        "session[0].sinks[0].max_bytes",
        "between 1048576 and",
    ),
    (
        {"sinks": [{"type": "recorder", "after": -1}]},
        "session[0].sinks[0].after",
        "between 0 and 86400",
    ),
    (
        {"sinks": [{"type": "recorder", "rotate_mb": 1}]},
        "session[0].sinks[0].rotate_mb",
        "unknown key",
    ),
    (
        {"sinks": [{"type": "recorder", "trigger": "tcp[tcpflags] &"}]},
        "session[0].sinks[0].trigger",
        "bad filter",
    ),
    (
        {"sinks": [{"type": "recorder", "path": "../x-%H.pcap"}]},
        "session[0].sinks[0].path",
        "outside the output directory",
    ),
    (
        {"sinks": [{"type": "recorder"}, {"type": "recorder", "path": "b.pcap"}]},
        "session[0].sinks[1]",
        "at most one recorder",
    ),
    ({"workers": 2, "sinks": [{"type": "recorder"}]}, "session[0].sinks[0]", "workers = 1"),
]


@pytest.mark.parametrize(("overrides", "key", "problem"), BAD_SESSIONS)
def test_bad_session_table(overrides: dict[str, Any], key: str, problem: str) -> None:
    raw = session(**overrides)
    for name, value in overrides.items():
        if value is None:
            del raw[name]
    with pytest.raises(ConfigError) as info:
        parse_config({"session": [raw]}, origin="conf.toml")
    assert (info.value.key, info.value.origin) == (key, "conf.toml")
    assert problem in info.value.problem, info.value.problem


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x.pcap", "a/../../x.pcap", "a/../b/../../x.pcap"]
)
def test_paths_leaving_the_output_directory_are_refused(path: str) -> None:
    raw = session(sinks=[{"type": "pcap", "path": path}])
    with pytest.raises(PathOutsideError) as info:
        parse_session_spec(raw)
    assert info.value.key == "sinks[0].path" and info.value.origin == "request"
    with pytest.raises(PathOutsideError):
        parse_session_spec(session(source={"type": "file", "path": path}))


def test_duplicate_session_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"session": [session(), session()]}, origin="c.toml")
    assert info.value.key == "session[1].name" and "duplicate" in info.value.problem


def test_malformed_filter_shows_its_caret() -> None:
    with pytest.raises(ConfigError) as info:
        parse_session_spec(session(filter="tcp port"), origin="c.toml", key="session[0]")
    assert info.value.key == "session[0].filter"
    assert "^" in str(info.value)


def test_load_config_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match=f"^{missing}: cannot read"):
        load_config(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[service\n")
    with pytest.raises(ConfigError, match=f"^{broken}: not valid TOML"):
        load_config(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[session]]\nname = "x"\nsource = { type = "afpacket", interface = "lo" }\n'
        'snaplen = "all"\n'
    )
    with pytest.raises(ConfigError, match=f"^{bad}: session\\[0\\].snaplen: must be an integer"):
        load_config(bad)


def test_errors_cross_process_boundaries() -> None:
    err = PathOutsideError("c.toml", "sinks[0].path", "outside")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is PathOutsideError and str(back) == str(err)


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "config" / "capsvc.toml")
    assert config.service.host_port[0] == "127.0.0.1"
    assert config.service.output_dir == str(ROOT / "captures")
    assert [s.source.interface for s in config.sessions if s.autostart] == ["lo"]
    assert isinstance(config.service, ServiceSettings)


def test_recorder_sink_and_analysis_keys_parse() -> None:
    spec = parse_session_spec(
        session(
            conversations=False,
            sinks=[
                {
                    "type": "recorder",
                    "seconds": 30,
                    "max_bytes": 8 << 20,
                    "trigger": "tcp[tcpflags] & tcp-rst != 0",
                    "after": 2,
                    "holdoff": 0,
                    "dump_on_stop": True,
                }
            ],
        )
    )
    (rec,) = spec.sinks
    assert (rec.type, rec.seconds, rec.max_bytes, rec.after, rec.holdoff) == (
        "recorder",
        30.0,
        8 << 20,
        2.0,
        0.0,
    )
    assert rec.trigger == "tcp[tcpflags] & tcp-rst != 0" and rec.dump_on_stop
    assert rec.path == "s1-%Y%m%d-%H%M%S.pcap"  # named after the session by default
    assert spec.conversations is False and spec.series is None
    plain = parse_session_spec(session(sinks=[{"type": "recorder"}]))
    assert plain.sinks[0].holdoff is None and plain.sinks[0].trigger == ""


@pytest.mark.parametrize(
    ("written", "mode", "directories"),
    [("0640", 0o640, 0o750), (0o640, 0o640, 0o750), ("644", 0o644, 0o755), ("0600", 0o600, 0o700)],
)
def test_file_mode_forms(written: Any, mode: int, directories: int) -> None:
    settings = parse_config({"service": {"file_mode": written, "file_group": 4}}).service
    assert (settings.file_mode, settings.dir_mode, settings.file_group) == (mode, directories, "4")


def _documented(section: str) -> set[str]:
    """The keys config/capsvc.toml names in a section, set or shown commented out."""
    import re

    text = (ROOT / "config" / "capsvc.toml").read_text()
    return set(re.findall(r"^#? ?([a-z_]+) = ", text.split(section, 1)[1], re.MULTILINE))


def test_example_config_documents_every_key() -> None:
    """Every [service] key the parser takes, every session key and every sink key is in
    config/capsvc.toml (set, or shown commented out with its default).

    Mutation: a key added to the parser and not to the file fails here."""
    import dataclasses

    from capsvc.service._settings import SERVICE_KEYS

    service = _documented("[service]").intersection(SERVICE_KEYS)
    assert service == set(SERVICE_KEYS)
    session_keys = {f.name for f in dataclasses.fields(SessionSpec)} - {"sinks"}
    assert session_keys <= _documented("[[session]]")
    sink_keys = {f.name for f in dataclasses.fields(SinkSpec)}
    assert sink_keys <= _documented("[[session.sinks]]")


def test_example_config_documents_every_service_key() -> None:
    """config/capsvc.toml shows every key of ``[service]`` (set, or commented out at its
    default), each under a comment saying what it does."""
    text = (ROOT / "config" / "capsvc.toml").read_text()
    service = text.split("[service]\n", 1)[1].split("\n[", 1)[0]
    lines = service.splitlines()
    keys = [f.name for f in dataclasses.fields(ServiceSettings) if f.name != "unix_socket"]
    assert len(keys) >= 11  # the fields were found
    for key in keys:
        at = [i for i, line in enumerate(lines) if line.lstrip("# ").startswith(f"{key} = ")]
        assert len(at) == 1, key
        above = lines[at[0] - 1] if at[0] else ""
        assert above.startswith("# ") and not re.match(r"#? ?\w+ = ", above), key
