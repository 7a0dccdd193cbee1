"""The names of states and kinds the console shows (the store keeps them in English),
marked for the catalogues and translated when shown."""

from __future__ import annotations

from seriesfeed.i18n import N_

__all__ = ["WORDS"]

WORDS: dict[str, str] = {
    # outbox states
    "queued": N_("queued"), "sending": N_("sending"), "sent": N_("sent"),
    "retry": N_("retry"), "failed": N_("failed"),
    # subscriber statuses
    "pending": N_("pending"), "confirmed": N_("confirmed"),
    "unsubscribed": N_("unsubscribed"), "bounced": N_("bounced"),
    # frequencies
    "daily": N_("Daily"), "weekly": N_("Weekly"),  # the subscribe form's own words
    # health
    "up": N_("up"), "degraded": N_("degraded"), "down": N_("down"),
    # what a health reason is about
    "source": N_("A source is failing"), "relay": N_("Sending is paused"),
    "job": N_("A job failed"), "store": N_("The store has a problem"),
    "retry-reason": N_("Messages are waiting to be retried"),
    # source poll results
    "ok": N_("ok"), "partial": N_("partial"), "unchanged": N_("unchanged"),
    "error": N_("error"), "gone": N_("gone"),
    # bounce kinds
    "hard": N_("hard bounces"), "complaint": N_("complaints"),
    # outbox kinds
    "digest": N_("digest"), "confirm": N_("confirmation"), "welcome": N_("welcome"),
    "manage": N_("manage link"), "catch_up": N_("catch-up"),
}
