"""Processes a test starts, reaped whatever happens: each runs in its own process group,
and on the way out (a pass, a failed assert, a timeout) every one still alive is SIGKILLed
with its children, waited for, and its pipes closed. A test that left daemons running made
the next test fail on their lock and their unclosed pipes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Processes", "catches", "reap", "reaping_every_popen", "seriesfeed_args",
           "spawned"]


def seriesfeed_args(config_path: object, *args: str) -> list[str]:
    """The command line of ``seriesfeed --config PATH ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "seriesfeed", "--config", str(config_path), *args]


def catches(pid: int, sig: int) -> bool:
    """The process has a handler for ``sig`` installed (Linux: SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc``'s process group if it still runs, wait for it, close its pipes."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    try:
        proc.wait(timeout=30)
    finally:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


class Processes:
    """The processes one test starts (``start`` takes Popen's arguments); ``close`` reaps
    them all, each one's failure kept from stopping the others."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[Any]] = []

    def start(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        # its own group: the reaper kills what the process started too
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        errors: list[BaseException] = []
        for proc in {id(p): p for p in self.started}.values():
            try:
                reap(proc)
            except BaseException as exc:  # reap the rest first
                errors.append(exc)
        self.started.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def spawned(args: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """One process, reaped on the way out."""
    with Processes() as procs:
        yield procs.start(args, **kwargs)


TESTS = str(Path(__file__).resolve().parent.parent)


@contextmanager
def reaping_every_popen() -> Iterator[Processes]:
    """The safety net under every test (an autouse fixture): each ``subprocess.Popen``
    made by code under tests/ is reaped when the test ends, so a test that fails before
    its own clean-up leaves nothing running. Processes started by libraries (asyncio,
    ``subprocess.run``, which reaps its own) are not touched."""
    started = Processes()
    original = subprocess.Popen.__init__

    def init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if sys._getframe(1).f_code.co_filename.startswith(TESTS):
            started.started.append(self)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
    try:
        yield started
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]
        started.close()
