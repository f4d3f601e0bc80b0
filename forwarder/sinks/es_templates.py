"""`bootstrap: true`: index and component templates with the ECS mappings we emit.

Elasticsearch's built-in `logs-*-*` template would map our data streams too, but
with dynamic mappings (an IP as text, say). OpenSearch has no such template and
without one a write to `logs-x-y` creates a plain index, not a data stream
(PROTOCOLS.md 2.4). So we install: a component template holding the ECS 9.4.0
types of every field the mapper can emit, and an index template (priority 200,
above the built-in 100) for `logs-aws.workmail_*-*` with `data_stream: {}`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import httpx
import orjson
import structlog

from forwarder.config import ElasticsearchSinkConfig
from forwarder.sinks._http import short

log = structlog.get_logger(__name__)

COMPONENT = "workmail-forwarder@ecs-mappings"
INDEX_TEMPLATE = "workmail-forwarder"
# ECS types OpenSearch lacks, and the nearest type it has.
_OPENSEARCH_TYPES = {"wildcard": "keyword", "match_only_text": "text",
                     "constant_keyword": "keyword", "flattened": "flat_object"}  # fmt: skip


def ecs_field_types() -> dict[str, str]:
    """ECS 9.4.0 field -> type, for the fields the mapper emits (packaged data)."""
    data = resources.files("forwarder.mapping").joinpath("data/ecs_subset.json").read_bytes()
    fields: dict[str, Any] = orjson.loads(data)["fields"]
    return {name: str(spec["type"]) for name, spec in fields.items()}


def mappings(flavor: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for name, ecs_type in sorted(ecs_field_types().items()):
        if ecs_type in ("object", "nested"):
            continue  # implied by their children
        kind = _OPENSEARCH_TYPES.get(ecs_type, ecs_type) if flavor == "opensearch" else ecs_type
        spec: dict[str, Any] = {"type": kind}
        if kind == "keyword":
            spec["ignore_above"] = 1024
        node = root
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node.setdefault(leaf, spec)
    return {"properties": root}


async def install_templates(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], config: ElasticsearchSinkConfig
) -> None:
    base = url.rstrip("/")
    plain = {k: v for k, v in headers.items() if k != "Content-Encoding"}
    plain["Content-Type"] = "application/json"
    pattern = "logs-aws.workmail_*-*"
    meta = {"managed_by": "workmail-forwarder"}
    component = {"template": {"mappings": mappings(config.flavor)}, "_meta": meta}
    index_template = {
        "index_patterns": [pattern],
        "data_stream": {},
        "priority": 200,
        "composed_of": [COMPONENT],
        "_meta": meta,
    }
    bodies = (
        (f"{base}/_component_template/{COMPONENT}", component),
        (f"{base}/_index_template/{INDEX_TEMPLATE}", index_template),
    )
    for target, body in bodies:
        try:
            response = await client.put(target, content=orjson.dumps(body), headers=plain)
        except httpx.HTTPError as exc:
            log.error("es_bootstrap_failed", sink=config.id, target=target, error=str(exc))
            return
        if response.status_code >= 300:
            log.error("es_bootstrap_failed", sink=config.id, target=target, error=short(response))
            return
    log.info("es_bootstrap_done", sink=config.id, index_template=INDEX_TEMPLATE, pattern=pattern)
