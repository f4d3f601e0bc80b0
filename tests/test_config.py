from pathlib import Path

import pytest

from forwarder.config import load_config, parse_config, parse_duration, parse_size
from forwarder.errors import ConfigError

MINIMAL = {
    "sources": [{"id": "inbox", "type": "files", "path": "./inbox"}],
    "sinks": [{"id": "out", "type": "file", "path": "./out/x.ndjson"}],
}


def problems(data: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env or {})
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("250ms", 0.25), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0), (3, 3.0),
     ("1.5s", 1.5), ("10", 10.0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "1y", "-1s", True, ""])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is tested via key paths
        parse_duration(bad)


def test_sizes() -> None:
    assert parse_size("1MiB") == 1 << 20
    assert parse_size("512KiB") == 512 << 10
    assert parse_size("10MB") == 10_000_000
    assert parse_size(42) == 42


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(MINIMAL, {})
    assert config.state.backend == "sqlite"
    assert config.state.path == Path(".state/forwarder.db")
    assert config.shutdown_grace == 25.0
    assert config.telemetry.listen == "127.0.0.1:9464"
    sink = config.sinks[0]
    assert (
        sink.schema_ == "ocsf" and sink.batch.max_events == 500 and sink.retry.max_elapsed is None
    )


def test_env_expansion_with_defaults() -> None:
    data = {
        **MINIMAL,
        "sinks": [
            {"id": "out", "type": "file", "path": "${OUT_DIR}/x.ndjson", "schema": "${SCHEMA:-ecs}"}
        ],
        "shutdown_grace": "${GRACE:-5s}",
    }
    config = parse_config(data, {"OUT_DIR": "/tmp/o"})
    assert str(config.sinks[0].path) == "/tmp/o/x.ndjson"
    assert config.sinks[0].schema_ == "ecs"
    assert config.shutdown_grace == 5.0


def test_missing_env_names_key_path() -> None:
    data = {**MINIMAL, "dead_letter": {"path": "${NOT_SET_ANYWHERE}"}}
    assert problems(data) == ["dead_letter.path: environment variable NOT_SET_ANYWHERE is not set"]


def test_every_problem_reported_with_key_path() -> None:
    data = {
        "sources": [{"id": "a", "type": "files", "path": "x", "bogus": 1}],
        "sinks": [
            {
                "id": "s",
                "type": "file",
                "path": "o",
                "schema": "xml",
                "batch": {"max_wait": "soon"},
            },
            {"id": "t", "type": "carrier-pigeon"},
        ],
        "shutdown_grace": "5q",
        "extra": True,
    }
    found = problems(data)
    assert "sources[0].bogus: unknown key" in found
    assert any(p.startswith("sinks[0].schema: ") for p in found)
    assert any(p.startswith("sinks[0].batch.max_wait: ") and "duration" in p for p in found)
    assert any(p.startswith("sinks[1]: unknown type 'carrier-pigeon'") for p in found)
    assert any(p.startswith("shutdown_grace: ") for p in found)
    assert "extra: unknown key" in found
    assert len(found) == 6


def test_duplicate_ids_rejected() -> None:
    data = {**MINIMAL, "sinks": [MINIMAL["sinks"][0], MINIMAL["sinks"][0]]}
    assert any("sinks[1].id: 'out' is already used by sinks[0]" in p for p in problems(data))


def test_sources_and_sinks_required() -> None:
    found = problems({"sources": []})
    assert any(p.startswith("sources: ") for p in found)
    assert any(p.startswith("sinks: ") for p in found)


def test_workers_need_shared_state() -> None:
    assert any("workers" in p for p in problems({**MINIMAL, "workers": 3}))


def test_telemetry_listen_must_be_host_port() -> None:
    assert any(
        p.startswith("telemetry.listen: ")
        for p in problems({**MINIMAL, "telemetry": {"listen": "nope"}})
    )


def test_load_config_reports_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "not valid YAML" in info.value.problems[0]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read" in info.value.problems[0]


def test_bundled_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    for name in ("local.yaml", "example.yaml"):
        load_config(root / "config" / name, env={})


def test_aws_sources_take_connect_and_read_timeouts() -> None:
    s3 = {"id": "s3", "type": "s3_sqs", "queue_url": "https://sqs.example/1/q",
          "connect_timeout": "2s", "read_timeout": "500ms"}  # fmt: skip
    cw = {"id": "cw", "type": "cloudwatch", "log_groups": ["/g"]}
    config = parse_config({**MINIMAL, "sources": [s3, cw]}, {})
    first, second = config.sources
    assert first.type == "s3_sqs" and second.type == "cloudwatch"
    assert (first.connect_timeout, first.read_timeout) == (2.0, 0.5)
    assert (second.connect_timeout, second.read_timeout) == (10.0, 60.0)  # the defaults
    bad = {**cw, "connect_timeout": "0s", "read_timeout": "1h"}
    found = problems({**MINIMAL, "sources": [bad]})
    assert "sources[0].connect_timeout: Input should be greater than 0" in found
    assert "sources[0].read_timeout: Input should be less than or equal to 900" in found
    files = {"id": "f", "type": "files", "path": "./in", "read_timeout": "1s"}
    assert any("read_timeout" in p for p in problems({**MINIMAL, "sources": [files]}))
