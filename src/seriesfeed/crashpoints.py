"""Named crash points for the fault tests: off (and free) unless SERIESFEED_TEST_CRASH_AT is set.

``SERIESFEED_TEST_CRASH_AT=after_claim_commit:3`` makes the process exit at once (as if
SIGKILLed: no cleanup, no flush) the third time that point is reached.
"""

from __future__ import annotations

import os

__all__ = ["hit"]

_SPEC = os.environ.get("SERIESFEED_TEST_CRASH_AT", "")
_NAME, _, _NTH = _SPEC.partition(":")
_COUNT = int(_NTH) if _NTH.isdigit() else 1
_hits = 0


def hit(name: str) -> None:
    global _hits
    if not _NAME or name != _NAME:
        return
    _hits += 1
    if _hits >= _COUNT:
        os._exit(137)
