"""Small asyncio helpers shared by the runtime and the sources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def first_of(*awaitables: Awaitable[object]) -> None:
    """Wait until the first of these finishes; cancel the others."""
    tasks = [asyncio.ensure_future(aw) for aw in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
