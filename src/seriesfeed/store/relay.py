"""Queries for the relay's state: the one row every sender reads before it sends.

The row says whether the relay is paused, until when (the next probe's time), since when
and why. Taking the probe is a conditional update, so of several senders (processes, or
nodes on PostgreSQL) only one sends the probe when the pause runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from seriesfeed.store.tables import relay_state

__all__ = ["RelayState", "clear", "pause", "read", "take_probe"]

_ROW = 1


@dataclass(frozen=True)
class RelayState:
    paused_until: datetime | None = None
    since: datetime | None = None
    reason: str | None = None
    refusal_key: str | None = None
    refusals: int = 0  # probes in a row that the relay refused (the pause grows with them)
    relay: str | None = None  # the relay configuration the pause belongs to (a hash)

    @property
    def paused(self) -> bool:
        return self.paused_until is not None


def read(conn: Connection) -> RelayState:
    row = conn.execute(select(relay_state).where(relay_state.c.id == _ROW)).first()
    if row is None:
        return RelayState()
    return RelayState(row.paused_until, row.since, row.reason, row.refusal_key,
                      int(row.refusals or 0), row.relay)


def _write(conn: Connection, **values: object) -> None:
    if not conn.execute(update(relay_state).where(relay_state.c.id == _ROW)
                        .values(**values)).rowcount:
        conn.execute(insert(relay_state).values(id=_ROW, **values))


def pause(conn: Connection, until: datetime, now: datetime, reason: str, key: str | None,
          refusals: int, relay: str | None = None) -> RelayState:
    """Pause sending until ``until``; ``since`` is kept from a pause already running for
    the same relay configuration (one of another configuration is replaced)."""
    before = read(conn)
    since = before.since if before.since and before.relay == relay else now
    state = RelayState(until, since, reason[:1000], key, refusals, relay)
    _write(conn, paused_until=state.paused_until, since=state.since, reason=state.reason,
           refusal_key=key, refusals=refusals, relay=relay)
    return state


def clear(conn: Connection) -> RelayState:
    """The relay answers again: no pause; returns the state it had."""
    before = read(conn)
    if before.paused or before.refusals:
        _write(conn, paused_until=None, since=None, reason=None, refusal_key=None, refusals=0,
               relay=None)
    return before


def take_probe(conn: Connection, now: datetime, hold_until: datetime) -> bool:
    """Whether this sender may send the probe: the pause has run out and no other sender
    took it first (the pause moves on to ``hold_until`` while the probe is out)."""
    return bool(conn.execute(update(relay_state).where(
        relay_state.c.id == _ROW, relay_state.c.paused_until.isnot(None),
        relay_state.c.paused_until <= now).values(paused_until=hold_until)).rowcount)
