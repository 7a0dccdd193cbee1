"""What a reader's welcome mail says about them: the series they follow, what comes and
when (the alarm clock's next fire for their frequency), as plain data for
``messages.welcome_message``."""

from __future__ import annotations

from datetime import datetime, timedelta

from seriesfeed import messages
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.models import Frequency, Subscriber
from seriesfeed.schedules import make_trigger, next_fire
from seriesfeed.store import Store
from seriesfeed.store import catch_up as cq
from seriesfeed.store import entries as eq
from seriesfeed.store import subscribers as sq

__all__ = ["next_digest_at", "welcome_for", "welcome_lines", "welcome_of"]


def next_digest_at(config: Config, frequency: Frequency, now: datetime) -> datetime | None:
    """When the reader's next digest slot fires: the daemon's schedule for the frequency
    (strictly after ``now``: a slot firing this very second may have been recorded)."""
    trigger = make_trigger(getattr(config.schedule, frequency.value), config, frequency.value)
    return next_fire(trigger, (now + timedelta(seconds=1)).astimezone(config.zone))


def welcome_of(store: Store, config: Config, sub: Subscriber,
               now: datetime | None = None) -> messages.Welcome:
    """The welcome's facts for ``sub`` (also what the confirmed page says)."""
    assert sub.id is not None
    language = sub.language if sub.language in config.languages \
        else config.site.default_language
    originals = config.languages[language].fallback_for_digests() == "original"
    with store.read() as conn:
        every = eq.list_series(conn)
        pending = cq.pending_parts(conn, sub.id, language, originals)
    followed = [s for s in every if not sub.series or s.slug in sub.series]
    series = []
    for s in followed:
        text = s.texts.get(language) or s.texts.get(config.site.default_language)
        title = text.title if text else s.slug
        series.append((title, f"{config.public_url}/{language}/{s.slug}/"))
    first = pending[0][2] if pending else None
    return messages.Welcome(
        language=language, frequency=sub.frequency, series=series,
        next_at=next_digest_at(config, sub.frequency, now or now_utc()),
        first_part=first.part if first else None,
        archive_url=f"{config.public_url}/{language}/digests/" if config.digests.archive
        else None)


def welcome_for(store: Store, config: Config,
                subscriber_id: int | None) -> messages.Welcome | None:
    """The welcome of a subscriber by id; None when they were removed since."""
    with store.read() as conn:
        sub = sq.get(conn, id=subscriber_id) if subscriber_id is not None else None
    return welcome_of(store, config, sub) if sub is not None else None


def welcome_lines(store: Store, config: Config, sub: Subscriber) -> list[str]:
    """What the confirmed page says: the welcome mail's sentences."""
    return messages.welcome_texts(config, welcome_of(store, config, sub))
