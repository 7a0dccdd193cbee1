"""SQLAlchemy Core table definitions: the schema the queries use.

The migrations in ``migrations/versions`` create exactly this schema; a test compares
the two so they cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

from seriesfeed.errors import StoreDamagedError

__all__ = [
    "UTCDateTime", "admin_audit", "admin_login_failures", "admin_sessions", "catch_ups",
    "content_version", "digests", "entries", "entry_authors", "held_entries", "job_runs",
    "leadership", "metadata", "nodes", "outbox", "relay_state", "series", "series_texts",
    "source_entries", "source_polls", "sources", "subscriber_series", "subscribers",
    "suppressions",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type: values are stored as UTC without an offset. Naive
    datetimes are refused at bind time because they are always a bug here."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """On SQLite, one C call from the stored text to the aware datetime: SQLAlchemy's
        ``fromisoformat`` then ``process_result_value``'s ``replace(tzinfo=)`` cost about
        1.3 µs a value more, and a site build reads three dates of every entry. Only the
        form SQLAlchemy writes (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC without an offset)
        takes the short path; anything else (an offset, no microseconds, damage) the
        general one, so the datetimes and errors are the same
        (tests/test_store_datetimes.py compares them)."""
        composed = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or composed is None:
            return composed
        parse = datetime.fromisoformat

        def general(value: Any) -> datetime | None:
            # SQLite stores whatever a hand edit puts in: a word, a number, a blob
            try:
                return composed(value)
            except (ValueError, TypeError, AssertionError, OverflowError) as exc:
                raise StoreDamagedError(
                    f"the store holds {str(value)[:60]!r} where a date belongs (a hand "
                    "edit?): correct that row or restore a backup") from exc

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if (type(value) is str and len(value) == 26 and value[19] == "."
                    and value[10] == " " and value[13] == value[16] == ":"):
                try:
                    found = parse(value + "+00:00")  # timezone.utc, as replace() gives
                except ValueError:
                    return general(value)
                if found.tzinfo is not None:
                    return found
            return general(value)

        return process


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

series_texts = Table(
    "series_texts",
    metadata,
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("url", Text),
)

# seq is the insertion sequence (AUTOINCREMENT on SQLite: never reused), the cursor
# digests advance on; id is the public, stable entry id (a tag URI unless imported).
entries = Table(
    "entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(1000), nullable=False, unique=True),
    Column("series_id", Integer, ForeignKey("series.id", ondelete="RESTRICT"), nullable=False),
    Column("language", String(16), nullable=False),
    Column("section", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("content_html", Text),
    Column("url", String(2000), nullable=False, unique=True),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("translation_of", Integer, ForeignKey("entries.seq", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False),
    # the part number an editor set (NULL: computed from the originals' order, parts.py)
    Column("part", Integer),
    # the article page's path segment: minted once (store/slugs.py), never recomputed
    Column("slug", String(200)),
    # the texts an editor set: a poll of the entry's source leaves them as they are
    Column("title_pinned", Boolean, nullable=False, server_default=false()),
    Column("summary_pinned", Boolean, nullable=False, server_default=false()),
    Index(None, "language", "published"),
    Index(None, "series_id", "language", "published"),
    Index(None, "series_id", "language", "slug", unique=True),
    sqlite_autoincrement=True,
)

entry_authors = Table(
    "entry_authors",
    metadata,
    Column("entry_seq", Integer, ForeignKey("entries.seq", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    # lower-cased address: one subscription per mailbox whatever the case typed
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", Text),
    Column("language", String(16), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("unsubscribed_at", UTCDateTime),
    # the status an unsubscribe ended (confirmed or pending): what its undo puts back
    Column("unsubscribed_from", String(16)),
    Column("consent_at", UTCDateTime),
    Column("consent_ip", String(64)),
    Column("consent_source", String(200)),
    Column("confirm_sent_at", UTCDateTime),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("hard_bounces", Integer, nullable=False, default=0),
    # transient failures reported after the relay's 250 (DSN "delayed")
    Column("soft_bounces", Integer, nullable=False, default=0, server_default="0"),
    # "first": the back catalogue from part 1 when confirmed (catch_ups); "new": not
    Column("start", String(8), nullable=False, default="new", server_default="new"),
    Index(None, "status", "language", "frequency"),
    sqlite_autoincrement=True,
)

# series a subscriber follows; none means every series
subscriber_series = Table(
    "subscriber_series",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"),
           primary_key=True),
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
)

# a reader catching up on one series: the next part to send them, the back catalogue's end
# (entries stored after it reach them by the digests) and the slot that last sent a part,
# so one slot never sends more than its share however often it is recorded
catch_ups = Table(
    "catch_ups",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"),
           primary_key=True),
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("next_part", Integer, nullable=False),
    Column("upto_seq", Integer, nullable=False),
    Column("last_period", String(32)),
)

# addresses removed on request: only a one-way hash, so they stay suppressed
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("language", String(16), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("period", String(32), nullable=False),
    Column("from_seq", Integer, nullable=False),
    Column("to_seq", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("language", "frequency", "period"),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("digest_id", Integer, ForeignKey("digests.id", ondelete="CASCADE")),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL")),
    Column("recipient", String(320), nullable=False),
    Column("message_id", String(300), nullable=False, unique=True),
    Column("from_seq", Integer),
    Column("to_seq", Integer),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("uncertain", Boolean, nullable=False, default=False),
    Column("last_error", Text),
    Column("smtp_code", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # operator retries and what came back after the relay's 250
    Column("note", Text),
    Column("operator_retries", Integer, nullable=False, default=0, server_default="0"),
    Column("bounce", String(16)),  # hard, soft or complaint
    Column("bounced_at", UTCDateTime),
    UniqueConstraint("digest_id", "subscriber_id"),
    Index(None, "state", "next_at"),
    sqlite_autoincrement=True,
)

# one row (id 1) whose version grows with every change to series or entries: what feeds
# and pages show can be checked for change with one primary-key read
content_version = Table(
    "content_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)

# one row per job run, for `seriesfeed status` and /healthz
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("ok", Boolean),
    Column("summary", Text),
    Index(None, "job", "started_at"),
)

# one row per configured source ([sources.<name>]): where it is now (after
# permanent redirects), the validators of the last good response, and how polling went
sources = Table(
    "sources",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("config_url", Text, nullable=False),  # the url in config.toml; a change resets
    Column("url", Text, nullable=False),  # where it is polled (a 301/308 moves it)
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_poll_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_status", String(64)),
    Column("last_error", Text),
    Column("entries_added", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),  # consecutive
    Column("not_before", UTCDateTime),  # backoff or Retry-After: no request before this
    Column("stopped", Boolean, nullable=False, default=False),  # 410 Gone
    Column("lease_until", UTCDateTime),  # a poll in flight (one request per source)
)

# which stored entries (by public id) a source gave, for prune = true
source_entries = Table(
    "source_entries",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("entry_id", String(1000), primary_key=True),
)

# entries whose publication time is still in the future: out of feeds, pages and digests
# until release_at; released entries get a new seq, so the digest cursors see them as new
held_entries = Table(
    "held_entries",
    metadata,
    Column("entry_seq", Integer, ForeignKey("entries.seq", ondelete="CASCADE"),
           primary_key=True),
    Column("release_at", UTCDateTime, nullable=False),
    Index(None, "release_at"),
)

# the relay's state: one row (id 1) that every sender process and node reads, so a pause
# is one clock, not a wait per row or a global in one process
relay_state = Table(
    "relay_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("paused_until", UTCDateTime),  # None: not paused; else the next probe's time
    Column("since", UTCDateTime),  # when the relay stopped taking mail
    Column("reason", Text),  # the relay's last refusal, for the operator
    Column("refusal_key", Text),  # equal for "the same refusal" whoever the recipient
    Column("refusals", Integer, nullable=False, default=0, server_default="0"),
    # the relay configuration the pause was recorded for (a keyed hash of [smtp], never the
    # password): a pause of another configuration does not hold this one
    Column("relay", Text),
)

# the leader's lease: one row. ``epoch`` grows by one each time a different node takes the
# lead, and every write of a scheduled job checks it, so a leader that froze past its lease
# cannot act on it when it wakes (RELIABILITY invariant 17)
leadership = Table(
    "leadership",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("holder", String(200)),  # a node id; None before the first node leads
    Column("epoch", Integer, nullable=False, default=0, server_default="0"),
    Column("expires_at", UTCDateTime),  # on the database's clock, never a node's
    Column("taken_at", UTCDateTime),  # when this epoch began
)

# every daemon on the store, with its heartbeat (status and /healthz name the recent ones)
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(200), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# one row per poll of a source (its history in the console; sources keeps only the last)
source_polls = Table(
    "source_polls",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("result", String(32), nullable=False),  # ok, unchanged, error, gone, ...
    Column("status", String(64)),  # the HTTP status or the error's kind
    Column("added", Integer, nullable=False, default=0, server_default="0"),
    Column("updated", Integer, nullable=False, default=0, server_default="0"),
    Column("error", Text),
    Index(None, "source", "at"),
    Index(None, "at"),
)

# the console's sessions: the signed cookie names a row, so a logout (or a password change)
# ends the session on every node, not only in the browser that had the cookie
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # a random id, never the cookie itself
    Column("account", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("address", String(64)),
    Column("ended_at", UTCDateTime),
)

# wrong passwords per client and per account: the lockout every node enforces alike
admin_login_failures = Table(
    "admin_login_failures",
    metadata,
    Column("key", String(200), primary_key=True),  # "client:<address>" or "account:<name>"
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("first_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

# every action taken in the console, and every login and logout: who (the account and its
# session), what, on what, when, from which address, and whether it succeeded
admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("account", String(100), nullable=False),
    Column("session", String(64)),  # admin_sessions.id (None: a failed login)
    Column("address", String(64)),
    Column("action", String(64), nullable=False),
    Column("target", Text),
    Column("detail", Text),  # JSON: the action's arguments and result
    Column("ok", Boolean, nullable=False),
    Index(None, "at"),
    sqlite_autoincrement=True,
)
