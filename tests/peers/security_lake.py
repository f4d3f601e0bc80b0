"""A strict Amazon Security Lake API peer in front of moto_server (which has none).

    python -m tests.peers.security_lake --port 0 --upstream http://127.0.0.1:MOTO \\
        --bucket aws-security-data-lake-us-east-1-abc --region us-east-1

Requests for the Security Lake REST API (`/v1/datalake...`, signed for the service
`securitylake`) are answered here; every other request (S3, STS, IAM, ...) is
forwarded to `--upstream` unchanged, so one endpoint URL serves a whole test and the
lake's bucket lives in moto.

Written to the API reference as botocore ships it (`securitylake` 2018-05-10 service
model, PROTOCOLS.md conventions): each request body is checked against the
operation's input shape (required members, types, string lengths and patterns, list
and integer bounds, no unknown members) and refused with `BadRequestException` (400)
as the service does; errors are rest-json (`x-amzn-ErrorType` + `{"message"}`). The
requests need a SigV4 `Authorization` for `securitylake` in `--region`, else
`AccessDeniedException` (403). Besides the model: CreateCustomLogSource refuses a
`sourceName` over 20 characters (the member's documentation: the provider role name
must stay under 64) and a name already in use in the Region (`ConflictException`,
409); the answer's location is `s3://<bucket>/ext/<name>/<version>/`, the provider
role `AmazonSecurityLake-Provider-<name>-<region>`.

Implemented operations: CreateCustomLogSource, ListLogSources, DeleteCustomLogSource,
ListDataLakes. Control API (test-only, `/__peer__/`):

* `POST /__peer__/faults {"s3": "503" | "drop" | null}`: S3 requests (signed for `s3`)
  answered `503 SlowDown` or with a closed connection until cleared: an S3 outage;
  `{"s3_delay": S}`: each S3 write (PUT/POST) waits S seconds before it goes on;
* `GET /__peer__/events`: the Security Lake calls (operation, body);
* `GET /__peer__/stats`: `{"requests", "lake_calls", "s3_failed", "forwarded",
  "services": {signing service: forwarded requests}}`;
* `POST /__peer__/reset`: forget custom sources, calls, counters and faults.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from tests.peers.faults import serve

_HOP = {"host", "content-length", "transfer-encoding", "connection"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROUTES = {
    ("POST", "/v1/datalake/logsources/custom"): "CreateCustomLogSource",
    ("POST", "/v1/datalake/logsources/list"): "ListLogSources",
    ("GET", "/v1/datalakes"): "ListDataLakes",
}
_DELETE = re.compile(r"^/v1/datalake/logsources/custom/([^/]+)$")
MAX_SOURCE_NAME = 20


def service_model() -> dict[str, Any]:
    path = resources.files("botocore").joinpath(
        "data", "securitylake", "2018-05-10", "service-2.json.gz"
    )
    model: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return model


class ApiError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _bad(message: str) -> ApiError:
    return ApiError("BadRequestException", 400, message)


class Validator:
    """A request body against a shape of the service model."""

    def __init__(self, model: dict[str, Any]) -> None:
        self.shapes: dict[str, Any] = model["shapes"]
        self.operations: dict[str, Any] = model["operations"]

    def check_input(self, operation: str, body: dict[str, Any]) -> None:
        self.check(body, self.operations[operation]["input"]["shape"], "")

    def check(self, value: Any, shape_name: str, where: str) -> None:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        label = where or "<body>"
        if kind == "structure":
            if type(value) is not dict:
                raise _bad(f"{label}: expected an object")
            members = shape["members"]
            for name in value:
                if name not in members:
                    raise _bad(f"{label}: unknown member {name!r}")
            for name in shape.get("required", []):
                if name not in value:
                    raise _bad(f"{label}: missing required member {name!r}")
            for name, inner in value.items():
                member = members[name]
                if member.get("location") in ("uri", "querystring", "header"):
                    raise _bad(f"{label}: {name!r} belongs in the {member['location']}")
                self.check(inner, member["shape"], f"{where}.{name}" if where else name)
        elif kind == "list":
            if type(value) is not list:
                raise _bad(f"{label}: expected a list")
            self._bounds(len(value), shape, label, "items")
            for index, item in enumerate(value):
                self.check(item, shape["member"]["shape"], f"{label}[{index}]")
        elif kind == "string":
            if type(value) is not str:
                raise _bad(f"{label}: expected a string")
            self._bounds(len(value), shape, label, "characters")
            if "enum" in shape and value not in shape["enum"]:
                raise _bad(f"{label}: {value!r} is not one of {shape['enum']}")
            if "pattern" in shape and not re.search(shape["pattern"], value):
                raise _bad(f"{label}: {value!r} does not match {shape['pattern']}")
        elif kind == "integer":
            if type(value) is not int:
                raise _bad(f"{label}: expected an integer")
            self._bounds(value, shape, label, "")
        elif kind == "boolean":
            if type(value) is not bool:
                raise _bad(f"{label}: expected a boolean")
        elif kind == "map":
            if type(value) is not dict:
                raise _bad(f"{label}: expected an object")
        else:
            raise _bad(f"{label}: the peer does not check shapes of type {kind}")

    @staticmethod
    def _bounds(n: int, shape: dict[str, Any], label: str, unit: str) -> None:
        if "min" in shape and n < shape["min"]:
            raise _bad(f"{label}: at least {shape['min']} {unit}".rstrip())
        if "max" in shape and n > shape["max"]:
            raise _bad(f"{label}: at most {shape['max']} {unit}".rstrip())


@dataclass
class LakeState:
    upstream: str
    bucket: str
    region: str
    account: str
    validator: Validator
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> resource
    calls: list[dict[str, Any]] = field(default_factory=list)
    s3_fault: str | None = None
    s3_delay: float = 0.0  # seconds each S3 write waits before it is forwarded
    requests: int = 0
    s3_failed: int = 0
    forwarded: int = 0
    services: dict[str, int] = field(default_factory=dict)  # forwarded requests per service

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["sourceName"]
        if len(name) > MAX_SOURCE_NAME:
            raise _bad(f"sourceName: use at most {MAX_SOURCE_NAME} characters")
        if name in self.sources:
            raise ApiError("ConflictException", 409, f"custom source {name} already exists")
        version = body.get("sourceVersion", "1.0")
        arn = f"arn:aws:securitylake:{self.region}:{self.account}"
        resource = {
            "sourceName": name,
            "sourceVersion": version,
            "attributes": {
                "crawlerArn": f"{arn}:crawler/{name}",
                "databaseArn": f"{arn}:database/amazon_security_lake_glue_db",
                "tableArn": f"{arn}:table/{name}",
            },
            "provider": {
                "location": f"s3://{self.bucket}/ext/{name}/{version}/",
                "roleArn": f"arn:aws:iam::{self.account}:role/"
                f"AmazonSecurityLake-Provider-{name}-{self.region}",
            },
        }
        self.sources[name] = {"resource": resource, "request": body}
        return {"source": resource}

    def list_sources(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("regions") and self.region not in body["regions"]:
            return {"sources": []}
        if body.get("accounts") and self.account not in body["accounts"]:
            return {"sources": []}
        custom = [{"customLogSource": entry["resource"]} for entry in self.sources.values()]
        return {"sources": [{"account": self.account, "region": self.region, "sources": custom}]}

    def list_data_lakes(self) -> dict[str, Any]:
        arn = f"arn:aws:securitylake:{self.region}:{self.account}:data-lake/default"
        return {"dataLakes": [{"dataLakeArn": arn, "region": self.region,
                               "s3BucketArn": f"arn:aws:s3:::{self.bucket}",
                               "createStatus": "COMPLETED"}]}  # fmt: skip


def _scope(request: web.Request) -> tuple[str, str] | None:
    match = _SCOPE.search(request.headers.get("Authorization", ""))
    return (match.group(1), match.group(2)) if match else None


def build_app(state: LakeState) -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    session: dict[str, aiohttp.ClientSession] = {}

    async def on_startup(_: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(auto_decompress=False)

    async def on_cleanup(_: web.Application) -> None:
        await session["s"].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)

    async def lake(request: web.Request, operation: str, params: dict[str, str]) -> web.Response:
        scope = _scope(request)
        if scope is None or scope[1] != "securitylake" or scope[0] != state.region:
            raise ApiError("AccessDeniedException", 403, "missing or foreign SigV4 signature")
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise _bad("the body is not JSON") from None
        if operation == "ListDataLakes":
            state.calls.append({"operation": operation, "body": dict(request.query)})
            return web.json_response(state.list_data_lakes())
        if operation == "DeleteCustomLogSource":
            state.calls.append({"operation": operation, "body": params})
            if params["sourceName"] not in state.sources:
                raise ApiError("ResourceNotFoundException", 404, "no such custom source")
            del state.sources[params["sourceName"]]
            return web.json_response({})
        state.validator.check_input(operation, body)
        state.calls.append({"operation": operation, "body": body})
        if operation == "CreateCustomLogSource":
            return web.json_response(state.create(body))
        return web.json_response(state.list_sources(body))

    async def forward(request: web.Request) -> web.StreamResponse:
        scope = _scope(request)
        if scope is not None and scope[1] == "s3" and state.s3_fault is not None:
            state.s3_failed += 1
            if state.s3_fault == "drop":
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            xml = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                   "<Message>Please reduce your request rate.</Message></Error>")  # fmt: skip
            return web.Response(status=503, text=xml, content_type="application/xml")
        body = await request.read()
        if scope is not None and scope[1] == "s3" and request.method in ("PUT", "POST"):
            await asyncio.sleep(state.s3_delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        state.forwarded += 1
        service = scope[1] if scope is not None else "unsigned"
        state.services[service] = state.services.get(service, 0) + 1
        async with session["s"].request(
            request.method, state.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            return web.Response(status=upstream.status, body=payload, headers=out)

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests += 1
        operation = _ROUTES.get((request.method, request.path))
        params: dict[str, str] = {}
        deleted = _DELETE.match(request.path) if request.method == "DELETE" else None
        if deleted is not None:
            operation, params = "DeleteCustomLogSource", {"sourceName": deleted.group(1)}
        if operation is None:
            return await forward(request)
        try:
            return await lake(request, operation, params)
        except ApiError as exc:
            return web.json_response(
                {"message": exc.message}, status=exc.status, headers={"x-amzn-ErrorType": exc.code}
            )

    async def faults(request: web.Request) -> web.Response:
        body = await request.json()
        if "s3" in body:
            state.s3_fault = body["s3"]
        if "s3_delay" in body:
            state.s3_delay = float(body["s3_delay"] or 0)
        return web.json_response({"s3": state.s3_fault, "s3_delay": state.s3_delay})

    async def events(_: web.Request) -> web.Response:
        return web.json_response(state.calls)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"requests": state.requests, "lake_calls": len(state.calls),
                                  "s3_failed": state.s3_failed, "forwarded": state.forwarded,
                                  "services": state.services})  # fmt: skip

    async def reset(_: web.Request) -> web.Response:
        state.sources.clear()
        state.calls.clear()
        state.s3_fault = None
        state.s3_delay = 0.0
        state.requests = state.s3_failed = state.forwarded = 0
        state.services.clear()
        return web.json_response({})

    app.router.add_post("/__peer__/faults", faults)
    app.router.add_get("/__peer__/events", events)
    app.router.add_get("/__peer__/stats", stats)
    app.router.add_post("/__peer__/reset", reset)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.peers.security_lake",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="moto_server's URL")
    parser.add_argument("--bucket", required=True, help="the lake's bucket (in moto)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012", help="moto's default account")
    args = parser.parse_args(argv)
    state = LakeState(args.upstream.rstrip("/"), args.bucket, args.region, args.account,
                      Validator(service_model()))  # fmt: skip
    serve(build_app(state), args.host, args.port)


if __name__ == "__main__":
    main()
