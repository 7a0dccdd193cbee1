"""SIGTERM and SIGINT caught from a process's first line: a daemon told to stop while it
still imports, migrates or binds stops cleanly (exit 0) instead of dying of the signal.

``defer`` records a stop signal (the console entry calls it before the slow imports); the
daemon's event loop takes over the signals and asks ``requested`` whether one came before
it did; every other command calls ``release``, which restores the default handling and
re-delivers a signal that came early, so a one-shot command still dies of SIGTERM or
stops on Ctrl-C as before."""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["SIGNALS", "defer", "release", "requested"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_state: dict[str, int | bool | None] = {"received": None, "deferred": False}


def _record(signum: int, frame: FrameType | None) -> None:
    _state["received"] = signum


def defer() -> None:
    """From now on a stop signal is recorded, not acted on (until the daemon's loop or
    ``release`` takes the signals over)."""
    for sig in SIGNALS:
        signal.signal(sig, _record)
    _state["deferred"] = True


def requested() -> bool:
    """A stop signal came while they were deferred."""
    return _state["received"] is not None


def release() -> None:
    """The default handling again, and a signal that came meanwhile delivered now. A
    no-op when ``defer`` was not called (the command line run inside another program)."""
    if not _state["deferred"]:
        return
    _state["deferred"] = False
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    received = _state["received"]
    if isinstance(received, int):
        _state["received"] = None
        signal.raise_signal(received)
