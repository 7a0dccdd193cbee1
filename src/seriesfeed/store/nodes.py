"""Queries for several daemons on one store: the leader's lease (one row, with the epoch
that fences an old leader's writes) and each node's heartbeat.

Times come from the database's clock (PostgreSQL's ``clock_timestamp()``), never a node's,
so two machines whose clocks disagree still agree on when a lease ran out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select, text, update

from seriesfeed.errors import StaleLeaderError
from seriesfeed.store.tables import leadership, nodes

__all__ = ["FENCE", "Fence", "Lease", "NodeRow", "bounded", "check_fence", "db_now", "fenced",
           "forget_node", "heartbeat", "leader", "let_go", "recent_nodes", "take_lease",
           "unfenced"]

_ROW = 1


@dataclass(frozen=True)
class Fence:
    """The lease a scheduled job acts under: its writes are refused once ``epoch`` is
    no longer ``node``'s."""

    node: str
    epoch: int
    lease_seconds: float = 15.0  # bounds how long its writes may hold the lease row


# Set by the daemon around each scheduled job; ``Store.write`` checks it inside the job's
# own transaction, so every write of that job (whichever verb makes it) is fenced without
# each verb passing the epoch along.
FENCE: ContextVar[Fence | None] = ContextVar("seriesfeed_fence", default=None)


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    token = FENCE.set(fence)
    try:
        yield
    finally:
        FENCE.reset(token)


@contextmanager
def unfenced() -> Iterator[None]:
    """For work any node may do inside a scheduled job (draining the outbox): a claim or a
    mark refused halfway through a send would leave a row for a second send."""
    with fenced(None):
        yield


def bounded(conn: Connection, seconds: float) -> None:
    """PostgreSQL: a transaction that touches the lease row never blocks the lead for
    long. A process frozen inside one (SIGSTOP, a long GC) would hold the row lock for as
    long as it is frozen and no node could take over: the server ends such a session
    after ``seconds`` idle, and this transaction waits at most ``seconds`` for a lock."""
    if conn.dialect.name != "postgresql":
        return
    ms = max(1, int(seconds * 1000))
    conn.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {ms}"))
    conn.execute(text(f"SET LOCAL lock_timeout = {ms}"))


def check_fence(conn: Connection, fence: Fence) -> None:
    """Refuse the transaction unless ``fence`` still holds the lease. ``FOR KEY SHARE``
    keeps the row from being taken over until this transaction ends (a takeover locks it
    ``FOR UPDATE`` first), so every write of the old epoch commits before the new epoch's
    first; the holder's own renewal, a plain UPDATE of other columns, does not wait."""
    bounded(conn, fence.lease_seconds)
    stmt = select(leadership.c.epoch).where(
        leadership.c.id == _ROW, leadership.c.holder == fence.node,
        leadership.c.epoch == fence.epoch)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True, key_share=True)
    if conn.execute(stmt).first() is None:
        raise StaleLeaderError(
            f"node {fence.node} no longer leads (its epoch {fence.epoch} has passed to "
            "another node): the store refused the write", node=fence.node, epoch=fence.epoch)


@dataclass(frozen=True)
class Lease:
    holder: str | None
    epoch: int
    expires_at: datetime | None
    taken_at: datetime | None


def db_now(conn: Connection) -> datetime:
    value: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
    return value


def leader(conn: Connection) -> Lease:
    row = conn.execute(select(leadership).where(leadership.c.id == _ROW)).first()
    if row is None:
        return Lease(None, 0, None, None)
    return Lease(row.holder, int(row.epoch), row.expires_at, row.taken_at)


def take_lease(conn: Connection, node: str, seconds: float) -> tuple[Lease, Lease | None]:
    """Take or renew the lease for ``node``: it succeeds when the node holds it already or
    the holder's lease has run out (the epoch grows by one for a new holder). Returns the
    lease as it was and the one ``node`` now holds (None: another node holds it)."""
    bounded(conn, seconds / 3)
    now = func.clock_timestamp()
    until = now + timedelta(seconds=seconds)
    columns = (leadership.c.holder, leadership.c.epoch, leadership.c.expires_at,
               leadership.c.taken_at)
    # the holder renews without the row lock a takeover needs: a long job of its own
    # (which holds the row FOR KEY SHARE) never makes it miss a renewal
    renewed = conn.execute(update(leadership).where(
        leadership.c.id == _ROW, leadership.c.holder == node).values(expires_at=until)
        .returning(*columns)).first()
    if renewed is not None:
        held = Lease(node, int(renewed.epoch), renewed.expires_at, renewed.taken_at)
        return held, held
    # a store emptied by hand (or by tests) has no row: the first taker puts it back
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # see heartbeat

    conn.execute(pg_insert(leadership).values(id=_ROW, epoch=0)
                 .on_conflict_do_nothing(index_elements=["id"]))
    # FOR UPDATE waits for the old epoch's writes in flight (FOR KEY SHARE) to commit
    row = conn.execute(select(*columns).where(leadership.c.id == _ROW)
                       .with_for_update()).one()
    before = Lease(row.holder, int(row.epoch), row.expires_at, row.taken_at)
    taken = conn.execute(
        update(leadership)
        .where(leadership.c.id == _ROW,
               leadership.c.expires_at.is_(None) | (leadership.c.expires_at < now))
        .values(holder=node, epoch=leadership.c.epoch + 1, taken_at=now, expires_at=until)
        .returning(*columns)).first()
    if taken is None:
        return before, None
    return before, Lease(node, int(taken.epoch), taken.expires_at, taken.taken_at)


def let_go(conn: Connection, node: str, epoch: int) -> bool:
    """End ``node``'s lease now (a clean stop), so another node need not wait it out."""
    return bool(conn.execute(update(leadership).where(
        leadership.c.id == _ROW, leadership.c.holder == node, leadership.c.epoch == epoch)
        .values(expires_at=func.clock_timestamp())).rowcount)


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


def heartbeat(conn: Connection, node: str, host: str, pid: int, started_at: datetime,
              forget_after: float) -> None:
    """Say ``node`` is alive now; nodes silent for ``forget_after`` seconds are dropped."""
    # here, not at the top: every write transaction imports this module (for the fence),
    # and on SQLite, where nothing here runs, the PostgreSQL dialect cost a command ~30 ms
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    now = func.clock_timestamp()
    stmt = pg_insert(nodes).values(node_id=node, host=host, pid=pid, started_at=started_at,
                                   heartbeat_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["node_id"],
                                            set_={"heartbeat_at": now}))
    conn.execute(delete(nodes).where(
        nodes.c.heartbeat_at < now - timedelta(seconds=forget_after)))


def forget_node(conn: Connection, node: str) -> None:
    conn.execute(delete(nodes).where(nodes.c.node_id == node))


def recent_nodes(conn: Connection, within: float) -> list[NodeRow]:
    """The nodes whose last heartbeat is at most ``within`` seconds old, oldest first."""
    rows = conn.execute(select(nodes).where(
        nodes.c.heartbeat_at >= func.clock_timestamp() - timedelta(seconds=within))
        .order_by(nodes.c.started_at, nodes.c.node_id)).all()
    return [NodeRow(r.node_id, r.host, int(r.pid), r.started_at, r.heartbeat_at)
            for r in rows]
