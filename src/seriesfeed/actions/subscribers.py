"""Subscriber verbs: subscribe, confirm (through the outbox), unsubscribe, preferences,
remove (erasure), list, import and export. They live in ``subscriptions``; this module is
the verbs' one door for the shells."""

from __future__ import annotations

from seriesfeed.subscriptions import (
    AddResult,
    ConfirmationMail,
    add_subscriber,
    confirm,
    confirmation_due,
    export_rows,
    import_subscribers,
    list_subscribers,
    queue_confirmation,
    remove_subscriber,
    send_confirmation,
    subscriber_for,
    unsubscribe,
    unsubscribe_address,
    unsubscribe_link,
    unsubscribe_target,
    update_preferences,
)
from seriesfeed.tokens import (
    Purpose,
    check_csrf,
    ensure_secret_key,
    make_csrf,
    make_token,
    read_token,
)

__all__ = [
    "AddResult",
    "ConfirmationMail",
    "Purpose",
    "add_subscriber",
    "check_csrf",
    "confirm",
    "confirmation_due",
    "ensure_secret_key",
    "export_rows",
    "import_subscribers",
    "list_subscribers",
    "make_csrf",
    "make_token",
    "queue_confirmation",
    "read_token",
    "remove_subscriber",
    "send_confirmation",
    "subscriber_for",
    "unsubscribe",
    "unsubscribe_address",
    "unsubscribe_link",
    "unsubscribe_target",
    "update_preferences",
]
