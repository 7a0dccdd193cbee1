"""An audit hook (sys.addaudithook) that records file opens and socket connects while armed,
so an import test fails on any open outside its input or any connect at all. Installed once
(hooks cannot be removed) and free when disarmed."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class _State:
    armed: bool = False
    allowed: set[str] = field(default_factory=set)
    opens: list[str] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)


_STATE = _State()
_CODE = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
_MODULE = (".py", ".pyc", ".so")
_INSTALLED = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _STATE.armed:
        return
    if event == "open":
        path = args[0]
        if isinstance(path, int):
            return
        name = os.fsdecode(path) if isinstance(path, bytes | str) else str(path)
        if name.startswith(_CODE) and name.endswith(_MODULE):
            return  # a lazy import of Python's own modules (a codec, say) is not a data read
        if name not in _STATE.allowed:
            _STATE.opens.append(name)
    elif event == "socket.connect":
        _STATE.connects.append(repr(args[1]))


@contextmanager
def audited(*allowed: Path) -> Iterator[_State]:
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True
    _STATE.allowed = {str(p) for p in allowed}
    _STATE.opens, _STATE.connects = [], []
    _STATE.armed = True
    try:
        yield _STATE
    finally:
        _STATE.armed = False
