"""Leases: which replica reads which lane (a CloudWatch log group), kept in the state store.

Replicas share nothing but the state store (DynamoDB when there is more than one),
so ownership is decided there with compare-and-set writes, the way the Kinesis
Client Library does it:

- every replica registers itself (`replicas/<scope>/<owner>`) with an expiry it
  renews on each heartbeat; the live replicas are those not expired;
- a lease (`leases/<scope>/<lane>`) names its owner and an expiry; the owner renews
  it with a CAS on the item's version, so a replica that lost it (paused too long,
  stolen after expiry) finds out on its next renewal and stops reading the lane;
- a replica takes at most its fair share (ceil(lanes / live replicas)), takes only
  free or expired leases, and offers what it holds above its share back, so a new
  replica gets work without anyone stealing a live lease;
- on a clean stop a replica deletes its leases: the next owner starts at once,
  from the checkpoint the lane's last owner committed (which moves with the lease
  because it lives in the same shared store).

Expiry compares wall clocks across hosts: keep `duration` well above the clock skew
and the heartbeat at most a third of it.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from forwarder.errors import VersionConflict
from forwarder.state import StateStore

log = structlog.get_logger(__name__)


def replica_id() -> str:
    """Unique per process and start: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class Balance:
    gained: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)
    surplus: set[str] = field(default_factory=set)  # held above the fair share: give back


class LeaseManager:
    def __init__(
        self,
        state: StateStore,
        scope: str,
        owner: str,
        *,
        duration: float = 30.0,
        min_replicas: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.scope = scope
        self.owner = owner
        self.duration = duration
        self._clock = clock
        self._owned: dict[str, int] = {}  # lane -> version of our lease item
        # `workers: N` starts N replicas at once: count them before they registered,
        # or the first to start would take every lane.
        self.min_replicas = min_replicas
        self.live_replicas = min_replicas

    def owns(self, lane: str) -> bool:
        return lane in self._owned

    @property
    def owned(self) -> set[str]:
        return set(self._owned)

    def _lease_key(self, lane: str) -> str:
        return f"leases/{self.scope}/{lane}"

    def _replica_prefix(self) -> str:
        return f"replicas/{self.scope}/"

    async def balance(self, lanes: Iterable[str], *, greedy: bool = False) -> Balance:
        """Heartbeat, renew what we hold, claim our fair share of the free or expired rest.

        `greedy` claims every free or expired lane (a draining replica that finished
        its share takes what nobody holds, so a drain always covers every lane).
        """
        wanted = set(lanes)
        now = self._clock()
        expires = now + self.duration
        result = Balance()
        await self.state.put(
            self._replica_prefix() + self.owner,
            {"owner": self.owner, "expires": expires},
            ttl=self.duration * 4,
        )
        replicas = await self.state.scan(self._replica_prefix())
        self.live_replicas = max(
            self.min_replicas,
            sum(1 for item in replicas.values() if float(item.value.get("expires", 0)) > now),
        )
        for lane in list(self._owned):
            if lane not in wanted:  # the lane is gone (a deleted log group): let it go
                await self.release(lane)
                result.lost.add(lane)
                continue
            try:
                self._owned[lane] = await self.state.put(
                    self._lease_key(lane),
                    {"owner": self.owner, "expires": expires},
                    expected_version=self._owned[lane],
                )
            except VersionConflict:
                del self._owned[lane]
                result.lost.add(lane)
                log.warning("lease_lost", scope=self.scope, lane=lane, owner=self.owner)
        fair = math.ceil(len(wanted) / self.live_replicas) if wanted else 0
        if greedy:
            fair = len(wanted)
        if len(self._owned) > fair:
            result.surplus = set(sorted(self._owned)[fair:])
        leases = await self.state.scan(f"leases/{self.scope}/")
        prefix_len = len(f"leases/{self.scope}/")
        current = {key[prefix_len:]: item for key, item in leases.items()}
        # Lanes in a stable order per replica, so replicas racing for free leases
        # start from different ends and collide less.
        for lane in sorted(wanted - set(self._owned), key=lambda x: hash((x, self.owner))):
            if len(self._owned) >= fair:
                break
            item = current.get(lane)
            if item is not None and float(item.value.get("expires", 0)) > now:
                continue  # held by a live replica: never stolen
            try:
                self._owned[lane] = await self.state.put(
                    self._lease_key(lane),
                    {"owner": self.owner, "expires": expires},
                    expected_version=0 if item is None else item.version,
                )
            except VersionConflict:
                continue  # another replica won the race
            result.gained.add(lane)
            log.info("lease_acquired", scope=self.scope, lane=lane, owner=self.owner)
        return result

    async def release(self, lane: str) -> None:
        version = self._owned.pop(lane, None)
        if version is None:
            return
        with contextlib.suppress(VersionConflict):  # someone took it over already
            await self.state.delete(self._lease_key(lane), expected_version=version)
        log.info("lease_released", scope=self.scope, lane=lane, owner=self.owner)

    async def release_all(self) -> None:
        for lane in list(self._owned):
            await self.release(lane)
        with contextlib.suppress(VersionConflict):
            await self.state.delete(self._replica_prefix() + self.owner)
