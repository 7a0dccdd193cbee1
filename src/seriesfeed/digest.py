"""Recording digests: which confirmed subscribers have entries they were not sent, in one
transaction that records the digest, queues one outbox row per recipient and advances the
cursors (DESIGN.md: the outbox).

"Not sent" is a cursor on the store's insertion sequence per subscriber (``last_seq``), so a
back-dated article stored today is still sent once and an edited one is not sent again.
Digests are unique on (language, frequency, period): the period is the schedule's slot
(``2026-11-24`` daily, ``2026-W48`` weekly, in the site's time zone), so the scheduler can
never record two for one slot. A manual ``digest send`` after the slot's digest records
``<slot>+<last seq>`` instead: new articles go out, a re-run with nothing new adds nothing.
"""

from __future__ import annotations

from datetime import datetime

from seriesfeed import crashpoints
from seriesfeed.config import Config
from seriesfeed.emails import message_id_affixes
from seriesfeed.models import Frequency
from seriesfeed.store import Store
from seriesfeed.store import digests as dq
from seriesfeed.store.digests import RecordedDigest, count_due, next_range

__all__ = ["RecordedDigest", "count_due", "digest_fallback", "next_range", "record_digests",
           "slot_period"]


def slot_period(frequency: Frequency, now: datetime, config: Config) -> str:
    local = now.astimezone(config.zone)
    if frequency is Frequency.DAILY:
        return local.strftime("%Y-%m-%d")
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def digest_fallback(config: Config, language: str) -> bool:
    """Whether the language's digest also carries originals nobody translated into it."""
    return config.languages[language].fallback_for_digests() == "original"


def record_digests(store: Store, config: Config, frequency: Frequency, now: datetime, *,
                   scheduled: bool) -> list[RecordedDigest]:
    """Record the digests of one frequency for every language, all or nothing."""
    out: list[RecordedDigest] = []
    with store.write() as conn:
        dq.lock_entries(conn)
        period = slot_period(frequency, now, config)

        def message_id(digest_id: int) -> tuple[str, str]:
            return message_id_affixes("digest", f"{digest_id}.", config)

        for language in config.languages:
            recorded = dq.record_group(conn, language, frequency, period, now, message_id,
                                       digest_fallback(config, language), scheduled=scheduled)
            if recorded is not None:
                out.append(recorded)
    crashpoints.hit("after_record_commit")
    return out
