"""Plain data passed between the modules: series, entries, subscribers, digests, outbox rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "CHART_MAX_DAYS", "CHART_MAX_WEEKS", "LISTING_MAX", "OPERATOR_STATUSES",
    "PINNABLE_TEXTS", "Author", "AuthorKind", "Entry", "Frequency", "OutboxKind", "OutboxState",
    "Series", "SeriesText", "SiteData", "Start", "Subscriber", "SubscriberStatus",
]


class AuthorKind(StrEnum):
    PERSON = "person"
    ORGANIZATION = "organization"


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


# what an operator may set a subscriber's status to (consent brings the rest)
OPERATOR_STATUSES = (SubscriberStatus.CONFIRMED, SubscriberStatus.UNSUBSCRIBED)
# bounds the CLI states in its options and the verbs enforce (here, so a command's options
# are known without importing the verb and the store)
LISTING_MAX = 1000  # one page of a listing: the console shows tens, a script pages on
CHART_MAX_DAYS = 366
CHART_MAX_WEEKS = 104


class OutboxState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


class OutboxKind(StrEnum):
    DIGEST = "digest"
    CONFIRM = "confirm"
    CATCH_UP = "catch_up"  # one back-catalogue part for a reader who started from part 1
    WELCOME = "welcome"  # after a reader confirms through the confirm link
    MANAGE = "manage"  # a preferences link, asked for on the manage page


class Start(StrEnum):
    """Where a new reader's mail begins: the series' first part, or its next new one."""

    FIRST = "first"
    NEW = "new"


@dataclass(frozen=True)
class Author:
    name: str
    kind: AuthorKind = AuthorKind.PERSON


@dataclass(frozen=True)
class SeriesText:
    """A series' words in one language."""

    title: str
    description: str = ""
    url: str | None = None


@dataclass
class Series:
    slug: str
    texts: dict[str, SeriesText] = field(default_factory=dict)  # by language code

    def text(self, language: str) -> SeriesText | None:
        return self.texts.get(language)


# the texts of an entry an editor may fix and pin against its source, in stored order
PINNABLE_TEXTS = ("title", "summary")


@dataclass
class Entry:
    """One article. ``id`` (a tag URI or the id it was imported with) is stable forever;
    ``seq`` is the store's insertion sequence, the cursor digests advance on."""

    series: str  # series slug
    language: str
    title: str
    summary: str
    published: datetime  # always timezone-aware
    authors: tuple[Author, ...] = ()
    section: str | None = None
    content_html: str | None = None
    url: str | None = None
    updated: datetime | None = None
    id: str | None = None
    translation_of: str | None = None  # the other entry's id
    seq: int | None = None
    scheduled: bool = False  # held until ``published`` (not in feeds, pages or digests)
    slug: str | None = None  # the article page's path segment, minted when first stored
    part: int | None = None  # which part of its series (parts.py), filled when read
    pinned: int | None = None  # the part an editor set (stored); None: computed from dates
    parts: int | None = None  # how many parts the series has (its originals)
    # the texts an editor set (of PINNABLE_TEXTS): a poll of the source leaves them alone
    texts_pinned: tuple[str, ...] = ()

    @property
    def page_path(self) -> str | None:
        """The article page's URL path (None before the entry is stored)."""
        return f"/{self.language}/{self.series}/{self.slug}/" if self.slug else None

    def link(self, public_url: str, local: bool) -> str | None:
        """Where feeds and digests send a reader: our article page when ``local`` (the
        ``[site] article_pages = "local"`` setting), else the publisher's URL."""
        if local and self.page_path:
            return public_url + self.page_path
        return self.url

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "series": self.series,
            "language": self.language,
            "section": self.section,
            "authors": [{"name": a.name, "kind": a.kind.value} for a in self.authors],
            "title": self.title,
            "summary": self.summary,
            "content_html": self.content_html,
            "url": self.url,
            "published": self.published.isoformat(),
            "updated": (self.updated or self.published).isoformat(),
            "translation_of": self.translation_of,
            "part": self.part,
        }


@dataclass
class Subscriber:
    email: str
    language: str
    frequency: Frequency
    status: SubscriberStatus
    name: str | None = None
    series: tuple[str, ...] = ()  # slugs followed; empty means all
    id: int | None = None
    created_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    consent_at: datetime | None = None
    consent_ip: str | None = None
    consent_source: str | None = None
    last_seq: int = 0  # digest cursor: entries with seq > last_seq have not been sent
    start: Start = Start.NEW  # from part 1 (catch-up) or only new parts

    def to_json(self) -> dict[str, object]:
        return {
            "email": self.email,
            "name": self.name,
            "language": self.language,
            "frequency": self.frequency.value,
            "status": self.status.value,
            "series": list(self.series),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "start": self.start.value,
        }


@dataclass(frozen=True)
class SiteData:
    """What the feeds and series pages show, read in one go (``store.entries.site_data``):
    rendering takes this, never a store or a connection."""

    entries: list[Entry]  # every published entry, newest first
    series: list[Series]
    links: dict[int, list[int]]  # an entry's seq -> the seqs of its translations
    linked: dict[int, Entry]  # every entry some link points at, by seq
