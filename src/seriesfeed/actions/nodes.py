"""Several daemons on one PostgreSQL store: this node's lease on the lead (take, renew,
step down, let go) and the nodes report that ``status`` and ``/healthz`` show.

Every node serves the web and drains the outbox; the leader alone runs the scheduled jobs,
each under a ``Fence`` (the lease's epoch) that the store checks on every write of that job.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from seriesfeed.clock import local_time, now_utc
from seriesfeed.config import Config
from seriesfeed.store import Store
from seriesfeed.store import nodes as nq
from seriesfeed.store.nodes import Fence, fenced, unfenced

__all__ = ["NodeLease", "acting_under", "leads_by_lease", "nodes_report"]

log = logging.getLogger("seriesfeed.nodes")

# a node is "seen recently" while its heartbeat is younger than this many leases; its row
# is dropped after a day of silence (a crashed node never says goodbye)
RECENT_LEASES = 2.0
FORGET_SECONDS = 86_400.0


@contextmanager
def acting_under(fence: Fence | None) -> Iterator[None]:
    """Run a scheduled job under ``fence``: each of its store writes commits only while
    the lease is still this node's (None: work every node does, never fenced)."""
    with fenced(fence):
        yield


def leads_by_lease(store: Store) -> bool:
    """Whether daemons on this store share it under a lease (PostgreSQL); on SQLite the
    one daemon holds a file lock and leads alone."""
    return store.dialect == "postgresql"


class NodeLease:
    """This node's view of the lead. ``tick`` (every third of the lease) beats the heart
    and takes or renews the lease; ``fence`` is what a scheduled job acts under, None when
    this node does not lead. The lease is trusted locally only until ``lease_seconds``
    after the renewal *began* (monotonic clock), so a node that froze stops acting on its
    own, and the store refuses what slips through."""

    def __init__(self, store: Store, config: Config, node: str | None = None) -> None:
        self.store = store
        self.seconds = config.nodes.lease_seconds
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.node = node or f"{self.host}-{self.pid}-{uuid.uuid4().hex[:6]}"
        self.started_at = now_utc()
        self.epoch: int | None = None
        self._valid_until = 0.0

    def fence(self) -> Fence | None:
        """The lease to act under now, or None (a lease past its local deadline steps down
        here, with the reason in the log)."""
        if self.epoch is None:
            return None
        if time.monotonic() >= self._valid_until:
            self.step_down("its lease ran out before it could renew it (the process was "
                           "paused, or the store did not answer)")
            return None
        return Fence(self.node, self.epoch, self.seconds)

    def tick(self) -> bool:
        """Beat and take or renew the lease; True when this node has just taken the lead
        (the caller runs the jobs whose slot passed without a leader)."""
        began = time.monotonic()
        with unfenced(), self.store.write() as conn:
            nq.heartbeat(conn, self.node, self.host, self.pid, self.started_at,
                         FORGET_SECONDS)
            before, now_held = nq.take_lease(conn, self.node, self.seconds)
        if now_held is None:
            if self.epoch is not None:
                self._lost(f"node {before.holder} took the lead (epoch {before.epoch}) "
                           "after this node's lease ran out")
            return False
        gained = self.epoch != now_held.epoch
        self.epoch = now_held.epoch
        self._valid_until = began + self.seconds
        if gained:
            log.warning("node %s takes the lead (epoch %s): %s", self.node, now_held.epoch,
                        _why_free(before, self.node))
        return gained

    def step_down(self, reason: str) -> None:
        if self.epoch is not None:
            self._lost(reason)

    def _lost(self, reason: str) -> None:
        log.warning("node %s loses the lead (epoch %s): %s; it runs no scheduled job "
                    "until it leads again", self.node, self.epoch, reason)
        self.epoch = None
        self._valid_until = 0.0

    def close(self) -> None:
        """A clean stop: end the lease now (another node takes the lead at its next tick,
        not a lease later) and leave the nodes list."""
        epoch, self.epoch = self.epoch, None
        with unfenced(), self.store.write() as conn:
            if epoch is not None and nq.let_go(conn, self.node, epoch):
                log.info("node %s lets go of the lead (epoch %s): stopping", self.node, epoch)
            nq.forget_node(conn, self.node)


def _why_free(before: nq.Lease, node: str) -> str:
    if before.holder is None:
        return "no node led before"
    if before.holder == node:
        return "this node led before and nobody took over"
    when = before.expires_at.isoformat(timespec="seconds") if before.expires_at else "?"
    return f"node {before.holder}'s lease (epoch {before.epoch}) ran out at {when}"


def nodes_report(config: Config, store: Store) -> dict[str, Any]:
    """The leader and the nodes seen recently (empty on SQLite: one daemon, no lease)."""
    if not leads_by_lease(store):
        return {}
    within = config.nodes.lease_seconds * RECENT_LEASES
    with store.read() as conn:
        lease = nq.leader(conn)
        now = nq.db_now(conn)
        seen = nq.recent_nodes(conn, within)
    held = lease.holder is not None and lease.expires_at is not None and \
        lease.expires_at > now
    zone = config.zone

    def when(value: datetime | None) -> str | None:
        return local_time(value, zone)

    leader = {"node": lease.holder, "epoch": lease.epoch, "since": when(lease.taken_at),
              "expires_at": when(lease.expires_at)} if held else None
    return {
        "leader": leader,
        "nodes": [{"node": n.node_id, "host": n.host, "pid": n.pid,
                   "started": when(n.started_at), "last_heartbeat": when(n.heartbeat_at),
                   "leader": held and n.node_id == lease.holder} for n in seen],
    }
