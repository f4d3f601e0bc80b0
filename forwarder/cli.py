"""workmail-forwarder: run | check-config | map | version. No side effects at import."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workmail-forwarder",
        description="Forward Amazon WorkMail audit and email event logs to SIEMs as OCSF or ECS.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the forwarder daemon")
    run.add_argument("--config", required=True, type=Path, metavar="FILE")
    run.add_argument(
        "--drain",
        action="store_true",
        help="exit 0 once every source is exhausted and every event acknowledged",
    )
    run.add_argument("--log-format", choices=("json", "console"), default=None)
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", required=True, type=Path, metavar="FILE")

    mapper = commands.add_parser("map", help="map NDJSON records (files or stdin) to a schema")
    mapper.add_argument("--schema", required=True, choices=("ocsf", "ecs", "raw"))
    mapper.add_argument("--log-type", default=None, metavar="TYPE")
    mapper.add_argument("files", nargs="*", type=Path, metavar="FILE")

    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    if args.command == "version":
        return _version()
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "map":
        return _map(args.schema, args.log_type, args.files)
    return _run(args.config, args.drain, args.log_format, args.log_level)


def _version() -> int:
    from forwarder import __version__

    print(f"workmail-forwarder {__version__} (OCSF 1.5.0, ECS 9.4.0)")
    return EXIT_OK


def _load(path: Path) -> object:
    from forwarder.config import load_config
    from forwarder.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _check_config(path: Path) -> int:
    from forwarder.config import Config

    config = _load(path)
    if not isinstance(config, Config):
        return EXIT_USAGE
    sources = ", ".join(f"{s.id} ({s.type})" for s in config.sources)
    sinks = ", ".join(f"{s.id} ({s.type}, {s.schema_})" for s in config.sinks)
    print(
        f"ok: {path}: sources: {sources}; sinks: {sinks}; "
        f"state: {config.state.backend}; dead-letter: {config.dead_letter.path}"
    )
    return EXIT_OK


def _run(path: Path, drain: bool, log_format: str | None, log_level: str) -> int:
    from forwarder.config import Config
    from forwarder.runtime import StopSignal, run
    from forwarder.telemetry import configure_logging

    configure_logging(log_format, log_level)
    config = _load(path)
    if not isinstance(config, Config):
        return EXIT_USAGE

    async def main_async() -> int:
        stop = StopSignal()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.trigger)
        return await run(config, stop, drain=drain)

    import structlog

    log = structlog.get_logger("forwarder")
    try:
        return asyncio.run(main_async())
    except Exception as error:
        # A TaskGroup wraps what its tasks raised; an OSError (port in use, path not
        # writable) is an operator's problem and needs no traceback.
        errors = error.exceptions if isinstance(error, ExceptionGroup) else (error,)
        for exc in errors:
            if isinstance(exc, OSError):
                log.error("fatal", error=str(exc))
            else:
                log.error("fatal", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        return EXIT_FAILURE


def _chunks(handle: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk


def _map(schema: str, log_type_arg: str | None, files: list[Path]) -> int:
    import orjson

    from forwarder import mapping
    from forwarder.decode import Line, StreamDecoder, split_records
    from forwarder.errors import DecodeError, MappingError

    log_type: str | None = None
    if log_type_arg is not None:
        log_type = mapping.normalize_log_type(log_type_arg)
        if log_type is None:
            known = ", ".join(mapping.LOG_TYPES)
            print(
                f"--log-type: unknown log type {log_type_arg!r} (one of {known})", file=sys.stderr
            )
            return EXIT_USAGE
    out = sys.stdout.buffer
    failures = 0
    line_number = 0

    def fail(error: str, raw: bytes) -> None:
        nonlocal failures
        failures += 1
        entry = {"error": error, "line": line_number, "raw": raw.decode("utf-8", "replace")}
        sys.stderr.buffer.write(orjson.dumps(entry) + b"\n")

    def emit(raw: bytes, time_ms: int | None, name: str) -> None:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            fail(f"invalid_json: {exc}", raw)
            return
        if not isinstance(record, dict):
            fail("not_an_object: a record must be a JSON object", raw)
            return
        kind = log_type or mapping.detect_log_type(record)
        if kind is None:
            fail("unknown_log_type: no WorkMail log type matches the record's fields", raw)
            return
        try:
            event_id = mapping.event_id(record, kind)
            when = mapping.event_time_ms(record, kind) or time_ms or 0
            doc = mapping.map_record(
                record,
                kind,
                schema,
                event_id=event_id,
                time_ms=when,
                raw=raw.decode().strip(),
                origin={"source_id": "map", "partition": name, "offset": line_number},
            )
        except MappingError as exc:
            fail(str(exc), raw)
            return
        out.write(orjson.dumps(doc) + b"\n")

    def handle_line(line: Line, name: str) -> None:
        nonlocal line_number
        line_number += 1
        if line.oversize:
            fail("line_too_long", line.data)
            return
        try:
            records = split_records(line.data)
        except DecodeError as exc:
            fail(str(exc), line.data)
            return
        for record in records:
            emit(record.raw, record.time_ms, name)

    inputs: list[tuple[str, BinaryIO]] = []
    try:
        for path in files:
            try:
                inputs.append((str(path), path.open("rb")))
            except OSError as exc:
                print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
                return EXIT_FAILURE
        if not files:
            inputs.append(("<stdin>", sys.stdin.buffer))
        for name, handle in inputs:
            decoder = StreamDecoder()
            try:
                for chunk in _chunks(handle):
                    for line in decoder.feed(chunk):
                        handle_line(line, name)
                for line in decoder.finish():
                    handle_line(line, name)
            except DecodeError as exc:
                fail(f"{name}: {exc}", b"")
    finally:
        for _, handle in inputs:
            if handle is not sys.stdin.buffer:
                handle.close()
        out.flush()
    return EXIT_FAILURE if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
