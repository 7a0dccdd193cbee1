"""Erasure: find an address in every text column the store keeps about people and mail
(outbox recipients and relay errors, which quote the recipient; job summaries; whatever a
later table adds) and replace it, in any letter case.

Editorial tables (series, entries and their texts and bylines) are left alone: they are
published content, not records about subscribers."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

from sqlalchemy import Connection, String, func, select, update

from seriesfeed.store.tables import metadata

__all__ = ["EDITORIAL", "ERASED", "address_variants", "scrub_address"]

ERASED = "erased@invalid"
EDITORIAL = frozenset({"series", "series_texts", "entries", "entry_authors",
                       "content_version"})


def address_variants(address: str) -> set[str]:
    """The address as typed and with its domain as IDNA A-label and U-label: a relay may
    quote either form."""
    variants = {address}
    local, _, domain = address.rpartition("@")
    if local and domain:
        with contextlib.suppress(UnicodeError, ValueError):
            variants.add(f"{local}@{domain.encode('idna').decode('ascii')}")
        with contextlib.suppress(UnicodeError, ValueError):
            variants.add(f"{local}@{domain.encode('ascii').decode('idna')}")
    return {v for v in variants if v}


def scrub_address(conn: Connection, addresses: Iterable[str]) -> int:
    """Replace every occurrence of ``addresses`` (case-insensitively) in the text columns of
    every non-editorial table with ERASED; return the number of values changed."""
    needles = sorted({a.lower() for a in addresses if a}, key=len, reverse=True)
    if not needles:
        return 0
    # whole addresses only: erasing a@example.org must leave ba@example.org alone
    pattern = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])(?:"
                         + "|".join(re.escape(n) for n in needles)
                         + r")(?![\w-]|\.[\w-])", re.IGNORECASE)
    changed = 0
    for table in metadata.sorted_tables:
        if table.name in EDITORIAL:
            continue
        keys = list(table.primary_key.columns)
        for column in table.columns:
            if not isinstance(column.type, String):  # Text is a String too
                continue
            length = column.type.length
            if length is not None and length < len(needles[-1]):
                continue  # too short to hold it (state, language, hashes of 64...)
            found = func.lower(column).contains(needles[0], autoescape=True)
            for needle in needles[1:]:
                found = found | func.lower(column).contains(needle, autoescape=True)
            rows = conn.execute(select(*keys, column).where(found)).all()
            for row in rows:
                value = row[-1]
                new = pattern.sub(ERASED, value)
                if new == value:  # a lower() match that the pattern does not see
                    continue
                where = [k == row[i] for i, k in enumerate(keys)]
                conn.execute(update(table).where(*where).values({column.name: new}))
                changed += 1
    return changed
