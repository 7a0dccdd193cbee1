"""The one exception tree for every failure a user can cause or act on.

    SeriesfeedError                 root; the CLI prints "Error: <message>" and exits 1
    ├── ConfigError                 config.toml or environment override (key, line)
    ├── StoreError                  database unreachable, migration failed, constraint
    │   ├── NotFoundError           an entry, series or subscriber that does not exist
    │   ├── StoreDamagedError       the database file is corrupt: restore a backup
    │   ├── StaleLeaderError        a scheduled write from a leader whose lease passed on
    │   └── StoreTooNewError        the schema is newer than this code: upgrade
    ├── ImportError_                an input file (path, line, field); nothing was stored
    ├── FetchError                  an HTTP fetch of a source failed (url, status)
    ├── ValidationError             a value given on the command line or a form (field)
    ├── LockError                   another process holds the single-runner lock
    └── DeliveryError               an SMTP or Maildir failure (code, recipient)
        ├── TransientDeliveryError  4xx, connection lost, timeout: retry later
        │   ├── UncertainDeliveryError  lost after the data was sent: retry, and count it
        │   └── RelayError          the sender's problem (connect, TLS, AUTH, MAIL FROM):
        │                           pause and retry, never counted, never a bounce
        └── PermanentDeliveryError  5xx for this recipient or message: never retried

Foreign exceptions are translated where they enter (the store, the importers, the
mailer); anything else reaching the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "MAX_STORED_INT", "ConfigError", "DeliveryError", "FetchError", "ImportError_",
    "LockError", "NotFoundError", "PermanentDeliveryError", "RelayError", "SeriesfeedError",
    "StaleLeaderError", "StoreDamagedError", "StoreError", "StoreTooNewError",
    "TransientDeliveryError", "UncertainDeliveryError", "ValidationError", "check_stored_int",
    "read_stored_int",
]

# the largest number an id, a limit or an offset can be in a query: SQLite's INTEGER and
# PostgreSQL's bigint are 64-bit, and a larger one fails in the driver, not as the user's
# mistake (a traceback on SQLite, "bigint out of range" blamed on the database elsewhere)
MAX_STORED_INT = 2**63 - 1


class SeriesfeedError(Exception):
    """Base of every user-facing failure; ``str(err)`` is a one-line message."""

    exit_code: int = 1


class ConfigError(SeriesfeedError):
    """A configuration value is missing, unknown or invalid."""

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None,
                 path: str | None = None) -> None:
        self.key = key
        self.line = line
        self.path = path
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class StoreError(SeriesfeedError):
    """The store cannot do what was asked (unreachable, locked, inconsistent)."""


class StaleLeaderError(StoreError):
    """A scheduled job's write carried a leadership epoch that another node has since
    taken over: the store refused it, and this node is no longer the leader."""

    def __init__(self, message: str, *, node: str, epoch: int) -> None:
        super().__init__(message)
        self.node = node
        self.epoch = epoch


class NotFoundError(StoreError):
    """A named object does not exist in the store."""


class StoreDamagedError(StoreError):
    """The database is corrupt (SQLite "database disk image is malformed"), or a row holds
    what its column cannot (a date edited by hand into a word: store/tables.py)."""


class StoreTooNewError(StoreError):
    """The store's schema revision is one this code does not know (a newer seriesfeed)."""


class ImportError_(SeriesfeedError):
    """An input file cannot be imported; nothing of it was stored."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.reason = message  # the message without the place (a caller may re-place it)
        self.path = path
        self.line = line
        self.field = field
        parts = []
        if path is not None:
            parts.append(path if line is None else f"{path}:{line}")
        elif line is not None:
            parts.append(f"line {line}")
        if field is not None:
            parts.append(f"field '{field}'")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class FetchError(SeriesfeedError):
    """A document could not be fetched over HTTP; ``transient`` ones are worth retrying."""

    def __init__(self, message: str, *, url: str, status: int | None = None,
                 retry_after: float | None = None, transient: bool = False) -> None:
        self.url = url
        self.reason = message  # without the URL, for callers that name the URL themselves
        self.status = status
        self.retry_after = retry_after
        self.transient = transient
        super().__init__(f"{url}: {message}")


class ValidationError(SeriesfeedError):
    """A value given by a user (option, argument, form field) is invalid."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.reason = message  # the message without the field's name
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class LockError(SeriesfeedError):
    """Another process already holds the lock this one needs."""


class DeliveryError(SeriesfeedError):
    """A message could not be handed to the mail transport."""

    def __init__(self, message: str, *, code: int | None = None,
                 recipient: str | None = None, reply: str | None = None) -> None:
        self.code = code
        self.recipient = recipient
        self.reply = reply  # the relay's reply text after the code, when it replied
        super().__init__(message)


class TransientDeliveryError(DeliveryError):
    """Try again later: a 4xx reply, a dropped connection or a timeout."""


class UncertainDeliveryError(TransientDeliveryError):
    """The connection broke after the message data was (perhaps) sent: retry, but count it."""


class PermanentDeliveryError(DeliveryError):
    """Do not try again: a 5xx reply for this recipient or message."""


class RelayError(TransientDeliveryError):
    """The relay refuses the sender, not the recipient: a wrong password (AUTH), a refused
    MAIL FROM, no connection, a failed TLS handshake. Nothing is counted against the
    subscriber; sending pauses and the rows wait (RELIABILITY invariant 11)."""


def check_stored_int(value: int, field: str, *, minimum: int = 0) -> int:
    """``value`` when a query can carry it, else the user's error naming ``field``."""
    if not minimum <= value <= MAX_STORED_INT:
        raise ValidationError(f"must be a whole number from {minimum} to {MAX_STORED_INT}",
                              field=field)
    return value


def read_stored_int(text: str, field: str, *, minimum: int = 0) -> int:
    """``text`` as a number a query can carry, else the user's error naming ``field``.
    ASCII digits only: ``str.isdigit`` also accepts other scripts' digits, which ``int``
    reads ("١" is 1: a typo that acts on row 1) or refuses ("²": a ValueError), and
    ``int`` refuses more than 4,300 digits; 19 digits hold every stored number."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise ValidationError(f"must be a whole number from {minimum} to {MAX_STORED_INT}",
                              field=field)
    return check_stored_int(int(digits), field, minimum=minimum)
