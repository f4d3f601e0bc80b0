"""Shared by the state tests: the moto_server peer and a fresh DynamoDB table per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from forwarder.config import AwsEndpoint
from forwarder.state.dynamodb_table import ensure_table
from tests.peers import moto as moto_peer
from tests.peers.moto import REGION, MotoServer

moto = moto_peer.moto  # the session-scoped moto_server fixture


def endpoint_of(moto: MotoServer) -> AwsEndpoint:
    return AwsEndpoint(region=REGION, endpoint_url=moto.endpoint_url)


async def new_table(moto: MotoServer) -> str:
    """A new state table, made by the code behind `state init`."""
    name = MotoServer.unique("state")
    await ensure_table(name, endpoint_of(moto))
    return name


def drop_table(moto: MotoServer, name: str) -> None:
    moto.client("dynamodb").delete_table(TableName=name)


@pytest.fixture
async def dynamo_table(moto: MotoServer) -> AsyncIterator[str]:
    name = await new_table(moto)
    yield name
    drop_table(moto, name)
