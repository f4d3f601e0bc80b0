"""Configuration: the YAML of CONTRACT.md as pydantic v2 models.

Loading goes YAML -> `${VAR}` expansion (per scalar, so a value can never break the
YAML around it) -> validation. Every problem is reported with its key path
(`sinks[1].url: ...`), all at once, so `check-config` is one round trip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from forwarder.config.services import (
    DeadLetterBatchConfig,
    DeadLetterConfig,
    DeadLetterRetryConfig,
    StateConfig,
    TelemetryConfig,
)
from forwarder.config.sinks import (
    ElasticsearchSinkConfig,
    FileSinkConfig,
    SecurityLakeSinkConfig,
    SinkBase,
    SinkConfig,
    SplunkHecSinkConfig,
    SyslogSinkConfig,
)
from forwarder.config.sources import (
    CloudWatchSourceConfig,
    FilesSourceConfig,
    FirehoseHttpSourceConfig,
    S3SqsSourceConfig,
    ServerTlsConfig,
    SourceBase,
    SourceConfig,
    parse_start,
)
from forwarder.config.types import (
    _VAR,
    AwsEndpoint,
    BatchConfig,
    Duration,
    LogTypeName,
    QueueConfig,
    RetryConfig,
    Schema,
    Size,
    Strict,
    TlsConfig,
    parse_duration,
    parse_size,
)
from forwarder.errors import ConfigError


class Config(Strict):
    state: StateConfig = StateConfig()
    workers: int = Field(default=1, ge=1, le=64)
    sources: list[SourceConfig] = Field(min_length=1)
    sinks: list[SinkConfig] = Field(min_length=1)
    dead_letter: DeadLetterConfig = DeadLetterConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    shutdown_grace: Duration = 25.0

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        _check_unique("sources", [source.id for source in self.sources])
        _check_unique("sinks", [sink.id for sink in self.sinks])
        if self.workers > 1 and self.state.backend in ("sqlite", "memory"):
            raise ValueError(
                "workers: more than one worker needs state.backend: dynamodb "
                "(replicas must share checkpoints)"
            )
        return self


def _check_unique(kind: str, ids: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise ValueError(
                f"{kind}[{index}].id: {item_id!r} is already used by {kind}[{seen[item_id]}]"
            )
        seen[item_id] = index


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _expand(node: Any, loc: tuple[int | str, ...], env: dict[str, str], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, (*loc, str(k)), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, (*loc, i), env, problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        problems.append(f"{_path(loc) or '<root>'}: environment variable {name} is not set")
        return ""

    return _VAR.sub(substitute, node)


def _strip_union_tags(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """Drop the discriminator tag pydantic inserts (`sinks.1.file.path` -> `sinks[1].path`)."""
    out: list[int | str] = []
    node = data
    skip_next_tag = False
    for part in loc:
        if skip_next_tag and isinstance(part, str) and isinstance(node, dict):
            skip_next_tag = False
            if node.get("type") == part:
                continue
        skip_next_tag = False
        out.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            skip_next_tag = isinstance(node, dict) and "type" in node
        else:
            node = None
    return tuple(out)


def _format_error(error: Any, data: Any) -> str:
    loc = _strip_union_tags(tuple(error["loc"]), data)
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown type {error['input'].get('type')!r}; {message}"
    path = _path(loc)
    if ": " in message and not path and message.split(":")[0].replace("[", "").strip():
        return message  # a model-level check that names its own key path
    return f"{path or '<root>'}: {message}"


def parse_config(data: Any, env: dict[str, str] | None = None) -> Config:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(["<root>: the configuration must be a mapping of keys"])
    expanded = _expand(data, (), dict(os.environ) if env is None else env, problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        problems.extend(_format_error(err, expanded) for err in exc.errors())
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"<file>: cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"<file>: {path} is not valid YAML{where}: {exc}"]) from None
    return parse_config(data, env)


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


__all__ = [
    "AwsEndpoint",
    "BatchConfig",
    "CloudWatchSourceConfig",
    "Config",
    "ConfigError",
    "DeadLetterBatchConfig",
    "DeadLetterConfig",
    "DeadLetterRetryConfig",
    "Duration",
    "ElasticsearchSinkConfig",
    "FileSinkConfig",
    "FilesSourceConfig",
    "FirehoseHttpSourceConfig",
    "LogTypeName",
    "QueueConfig",
    "RetryConfig",
    "S3SqsSourceConfig",
    "Schema",
    "SecurityLakeSinkConfig",
    "ServerTlsConfig",
    "SinkBase",
    "SinkConfig",
    "Size",
    "SourceBase",
    "SourceConfig",
    "SplunkHecSinkConfig",
    "StateConfig",
    "Strict",
    "SyslogSinkConfig",
    "TelemetryConfig",
    "TlsConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "parse_start",
    "secret",
]
