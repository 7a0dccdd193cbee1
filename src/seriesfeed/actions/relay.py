"""The relay's state, shared by every sender: one pause clock in the store, probed at its
own pace (RELIABILITY invariant 15).

A drain asks :func:`gate` before it claims anything: ``OPEN`` (send the batch), ``PROBE``
(the pause ran out: send one message to see whether the relay answers again) or ``WAIT``.
What the drain saw is then recorded: :func:`refused` starts or extends the pause,
:func:`answered` ends it, and every waiting row goes out in the same drain. Rows never
carry a wait of their own because the relay, not their address, was down.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from datetime import timedelta

from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.store import Store
from seriesfeed.store import relay as rq
from seriesfeed.store.relay import RelayState

__all__ = ["BUILD_KEY", "RELAY_PAUSE_MAX_S", "Gate", "RelayState", "answered", "cause",
           "fingerprint", "gate", "pause_for", "refused", "relay_state"]

log = logging.getLogger("seriesfeed.outbox")  # the logger operators filter delivery on

RELAY_PAUSE_MAX_S = 3600.0
# how the key of a pause begins when the same error came back while building messages (a
# template or the configuration), not from the relay: the pause's cause is kept in its key
BUILD_KEY = "build "


def cause(state: RelayState) -> str | None:
    """Why sending is paused: ``relay`` (it refuses or does not answer), ``message`` (the
    same error building every message), or None when it is not paused."""
    if not state.paused:
        return None
    return "message" if (state.refusal_key or "").startswith(BUILD_KEY) else "relay"


class Gate(enum.Enum):
    OPEN = "open"  # not paused: send the batch
    PROBE = "probe"  # the pause ran out and this sender took the probe: send one message
    WAIT = "wait"  # paused, or another sender is probing


def pause_for(config: Config, refusals: int, *, refusal: bool) -> timedelta:
    """How long the relay is left alone after a failed drain or probe. A relay that answers
    nothing, or answers "not now" (a 4xx such as 421), is only down: it is asked again
    every ``retry_seconds`` (each minute by default), so mail goes out within that of its
    return. One that refuses the sender (535, 530, the same 5xx for everyone) will not
    change its mind by itself: the pause doubles with each refused probe, up to an hour."""
    retry = config.mail.retry_seconds
    if not refusal:
        return timedelta(seconds=retry)
    return timedelta(seconds=min(retry * 2 ** max(refusals - 1, 0), RELAY_PAUSE_MAX_S))


def fingerprint(config: Config) -> str:
    """Which relay configuration this is: a pause belongs to the settings it was recorded
    for, so once the operator changes ``[smtp]`` (a fixed password or port) the old pause
    does not hold the new settings. Keyed with the site's secret so the stored hash cannot
    be used to guess the password offline; the password itself is never stored."""
    s = config.smtp
    text = "\0".join((s.host.lower(), str(s.port), s.username, s.password, s.security))
    key = config.security.secret_key.encode() or b"seriesfeed relay"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def _mine(state: RelayState, config: Config) -> RelayState:
    """The state as it applies to this configuration: a pause recorded for other relay
    settings is not this relay's (it is replaced by the next refusal)."""
    return state if state.relay == fingerprint(config) else RelayState()


def relay_state(store: Store, config: Config) -> RelayState:
    with store.read() as conn:
        return _mine(rq.read(conn), config)


def gate(store: Store, config: Config) -> tuple[Gate, RelayState]:
    """Whether this drain may send, and the relay's state as it found it."""
    now = now_utc()
    with store.read() as conn:
        state = _mine(rq.read(conn), config)
    if not state.paused:
        return Gate.OPEN, state
    assert state.paused_until is not None
    if state.paused_until > now:
        return Gate.WAIT, state
    # while the probe is out no other sender probes; if this one dies, the next probe
    # comes after one retry interval
    with store.write() as conn:
        taken = rq.take_probe(conn, now, now + timedelta(seconds=config.mail.retry_seconds))
    return (Gate.PROBE if taken else Gate.WAIT), state


def refused(store: Store, config: Config, reason: str, key: str | None, *,
            refusal: bool) -> RelayState:
    """The relay did not take mail: pause (or extend the pause) for everyone."""
    now = now_utc()
    relay = fingerprint(config)
    with store.write() as conn:
        before = _mine(rq.read(conn), config)
        refusals = before.refusals + 1 if refusal else 0
        state = rq.pause(conn, now + pause_for(config, refusals, refusal=refusal), now,
                         reason, key, refusals, relay)
    # once per change of refusal, not once per drain or probe
    if not before.paused or before.refusal_key != state.refusal_key:
        if cause(state) == "message":
            log.warning("sending paused: the same error comes back building the message for "
                        "different recipients, a template or configuration problem, not the "
                        "relay's (nothing is counted against subscribers; the messages wait, "
                        "next try at %s): %s", state.paused_until, reason)
        else:
            log.warning("sending paused: the relay refuses the sender, not the recipients "
                        "(nothing is counted against subscribers; the messages wait, next "
                        "try at %s): %s", state.paused_until, reason)
    return state


def answered(store: Store) -> None:
    """The relay took mail (or answered for a recipient): the pause is over."""
    with store.read() as conn:
        if not rq.read(conn).paused:
            return
    with store.write() as conn:
        before = rq.clear(conn)
    if before.paused and cause(before) == "message":
        log.info("messages are built and accepted again; sending resumed (paused since %s)",
                 before.since)
    elif before.paused:
        log.info("the relay accepts mail again; sending resumed (paused since %s)",
                 before.since)
