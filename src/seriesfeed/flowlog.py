"""One log line per subscribe-flow event (subscribed, confirmation mail, confirmed,
unsubscribed, unsubscribe undone, preferences changed, removed, and the operator's status
changes and lifted suppressions), with the address masked
and the subscriber number, written after the event's transaction committed (a decorator on
the verbs)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from seriesfeed.logs import mask_address

__all__ = ["P", "R", "subscriber_event"]

log = logging.getLogger("seriesfeed.subscribers")
P = ParamSpec("P")
R = TypeVar("R")


def _who(sub: Any, fallback: str | None = None) -> str:
    if sub is None:
        return f"{mask_address(fallback)}" if fallback else "a removed subscriber"
    return f"subscriber {sub.id} ({mask_address(sub.email)})"


def _describe(event: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> str:
    if event == "subscribe":
        address = kwargs.get("email", args[2] if len(args) > 2 else None)
        source = kwargs.get("source", "cli")
        if result.subscriber is None:
            return f"subscribe ({source}): {_who(None, address)} is suppressed; nothing done"
        sub = result.subscriber
        if result.created:
            return f"subscribe ({source}): {_who(sub)} added, {sub.status.value}"
        if result.send_confirmation and sub.status.value == "pending":
            return f"subscribe ({source}): {_who(sub)} asked again, pending"
        return f"subscribe ({source}): {_who(sub)} already {sub.status.value}; unchanged"
    if event == "confirmation":
        sub = kwargs.get("sub", args[2] if len(args) > 2 else None)
        return f"confirmation mail to {_who(sub)}: {result.value}"
    if event == "preferences":
        return (f"preferences of {_who(result)} changed: {result.language}, "
                f"{result.frequency.value}, series {', '.join(result.series) or 'all'}")
    if event == "status set":
        return (f"status set by the operator: {mask_address(result.email)} "
                f"{result.before.value} -> {result.after.value}")
    if event == "unsuppressed":
        return f"suppression lifted by the operator: {result.shown} (was {result.was})"
    return f"{event}: {_who(result)}"


def subscriber_event(event: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def logged(*args: P.args, **kwargs: P.kwargs) -> R:
            result = fn(*args, **kwargs)
            try:
                log.info("%s", _describe(event, args, dict(kwargs), result))
            except (AttributeError, IndexError, TypeError):  # a log line never fails a verb
                log.info("%s", event)
            return result

        return logged

    return wrap
