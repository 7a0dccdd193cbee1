"""Recording digests: kept as a name for callers of ``seriesfeed.digest``; the verb lives
in ``actions.digests`` and its queries in ``store.digests``."""

from __future__ import annotations

from seriesfeed.actions.digests import (
    RecordedDigest,
    digest_fallback,
    record_digests,
    slot_period,
)
from seriesfeed.store.digests import count_due, next_range

__all__ = ["RecordedDigest", "count_due", "digest_fallback", "next_range", "record_digests",
           "slot_period"]
