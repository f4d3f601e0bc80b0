"""workmail-forwarder: run | check-config | map | state init | version. No import side effects.

Also `aws` and `detections`, each parsed and run by its own module.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sources import Source

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

    state = commands.add_parser("state", help="manage the state store")
    state_commands = state.add_subparsers(dest="state_command", required=True, metavar="COMMAND")
    state_init = state_commands.add_parser(
        "init", help="create the state store (the DynamoDB table for state.backend: dynamodb)"
    )
    state_init.add_argument("--config", required=True, type=Path, metavar="FILE")

    replay = commands.add_parser(
        "replay-dead-letter",
        help="send dead-lettered records through the pipeline again (after fixing the cause)",
    )
    replay.add_argument("path", metavar="PATH", help="a dead-letter file, directory or s3://")
    replay.add_argument("--config", type=Path, metavar="FILE", help="sinks and dead letter to use")
    replay.add_argument(
        "--reason", action="append", default=[], metavar="R", help="only entries with this reason"
    )
    replay.add_argument("--dry-run", action="store_true", help="read and map, send nothing")
    replay.add_argument("--region", default=None)
    replay.add_argument("--endpoint-url", default=None, metavar="URL")
    replay.add_argument("--log-format", choices=("json", "console"), default=None)
    replay.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )

    from forwarder.aws_setup.command import add_parser as add_aws_parser

    add_aws_parser(commands)

    from forwarder.detections.command import add_parser as add_detections_parser

    add_detections_parser(commands)

    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        from forwarder import engine  # noqa: F401  (WMF_ENGINE is judged once, here)
    except RuntimeError as exc:  # engine.EngineUnavailable
        print(f"workmail-forwarder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "version":
        return _version()
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "map":
        return _map(args.schema, args.log_type, args.files)
    if args.command == "state":
        return _state_init(args.config)
    if args.command == "replay-dead-letter":
        return _replay_dead_letter(args)
    if args.command == "aws":
        from forwarder.aws_setup.command import run as aws_command

        return aws_command(args)
    if args.command == "detections":
        from forwarder.detections.command import run as detections_command

        return detections_command(args)
    return _run(args.config, args.drain, args.log_format, args.log_level)


def _version() -> int:
    from forwarder import __version__, engine

    print(f"workmail-forwarder {__version__} (OCSF 1.5.0, ECS 9.4.0) {engine.describe()}")
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


def _state_init(path: Path) -> int:
    """Create the configured state store; running it again changes nothing."""
    from forwarder.config import Config
    from forwarder.errors import StateError
    from forwarder.state import state_store_from_config
    from forwarder.state.dynamodb_table import ensure_table

    config = _load(path)
    if not isinstance(config, Config):
        return EXIT_USAGE
    state = config.state

    async def init() -> str:
        if state.backend == "dynamodb":
            report = await ensure_table(state.table, state)
            done = "created" if report.created else "exists"
            ttl = "enabled now" if report.ttl_enabled_now else "enabled"
            return (
                f"ok: dynamodb table {report.table} {done} "
                f"({report.billing_mode}, key pk/sk, ttl on expires_at {ttl})"
            )
        store = state_store_from_config(state)
        try:
            await store.ping()  # SQLite creates its file and schema on first use
        finally:
            await store.close()
        return f"ok: {state.backend} state at {state.path}"

    try:
        print(asyncio.run(init()))
    except StateError as exc:
        print(f"state init: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _run(path: Path, drain: bool, log_format: str | None, log_level: str) -> int:
    from forwarder.config import Config
    from forwarder.telemetry import configure_logging
    from forwarder.workers import for_worker, supervise, worker_index

    configure_logging(log_format, log_level)
    config = _load(path)
    if not isinstance(config, Config):
        return EXIT_USAGE
    index = worker_index()
    if config.workers > 1 and index is None:
        command = ["-m", "forwarder", "run", "--config", str(path), "--log-level", log_level]
        if log_format:
            command += ["--log-format", log_format]
        if drain:
            command.append("--drain")
        return supervise(command, config.workers, restart=not drain)
    if index is not None:
        import structlog

        structlog.contextvars.bind_contextvars(worker=index)
        config = for_worker(config, index)
    return _serve(config, drain)


def _serve(config: Config, drain: bool, sources: Sequence[Source] | None = None) -> int:
    from forwarder.runtime import StopSignal, run

    _tune_gc()

    async def main_async() -> int:
        stop = StopSignal()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.trigger)
        return await run(config, stop, drain=drain, sources=sources)

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


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections for a process that allocates per event.

    Events are freed by reference counting; the cyclic collector only finds cycles.
    With the default thresholds it runs every 700 allocations and, as queues and
    de-duplication windows grow, its full passes walk millions of live objects:
    measured at 15% of the CPU of a CloudWatch backlog. Everything alive after start
    (modules, config) is frozen out of its reach; the thresholds are raised.
    """
    import gc

    gc.collect()
    gc.freeze()
    # Measured (make bench): 50,000 bought no throughput over 10,000 and held 40-50 MB
    # more of cyclic garbage; 10,000 keeps files -> HEC within 200 MB.
    gc.set_threshold(10_000, 10, 10)


def _replay_dead_letter(args: argparse.Namespace) -> int:
    from forwarder.config import Config
    from forwarder.replay import replay_command
    from forwarder.telemetry import configure_logging

    configure_logging(args.log_format, args.log_level)
    config: Config | None = None
    if args.config is not None:
        loaded = _load(args.config)
        if not isinstance(loaded, Config):
            return EXIT_USAGE
        config = loaded
    return replay_command(
        args.path, config, serve=lambda c, sources: _serve(c, True, sources),
        reasons=args.reason, dry_run=args.dry_run, region=args.region,
        endpoint_url=args.endpoint_url,
    )  # fmt: skip


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
