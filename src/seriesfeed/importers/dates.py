"""Dates as importers meet them: "March 15, 2019", "26 de marzo de 2019", ISO 8601."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

__all__ = ["MONTHS", "local_midnight", "looks_like_date", "parse_human_date", "parse_iso"]

MONTHS = {
    name: number
    for number, names in enumerate([
        ("january", "jan", "enero"), ("february", "feb", "febrero"), ("march", "mar", "marzo"),
        ("april", "apr", "abril"), ("may", "mayo"), ("june", "jun", "junio"),
        ("july", "jul", "julio"), ("august", "aug", "agosto"),
        ("september", "sep", "sept", "septiembre", "setiembre"),
        ("october", "oct", "octubre"), ("november", "nov", "noviembre"),
        ("december", "dec", "diciembre"),
    ], start=1)
    for name in names
}
_EN = re.compile(r"^([A-Za-z]+)\.?\s+(\d{1,2}),\s*(\d{4})$")
_ES = re.compile(r"^(\d{1,2})\s+de\s+([A-Za-záéíóú]+)\s+de\s+(\d{4})$", re.IGNORECASE)


def looks_like_date(text: str) -> bool:
    return bool(_EN.match(text) or _ES.match(text))


def parse_human_date(text: str) -> date:
    """Raise ValueError with a message naming the problem."""
    m = _EN.match(text)
    if m:
        month, day, year = m.group(1).lower(), m.group(2), m.group(3)
    else:
        m = _ES.match(text)
        if not m:
            raise ValueError(f"'{text}' is not a date like 'March 15, 2019'")
        day, month, year = m.group(1), m.group(2).lower(), m.group(3)
    if month not in MONTHS:
        raise ValueError(f"'{text}': unknown month '{month}'")
    try:
        return date(int(year), MONTHS[month], int(day))
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a real date ({exc})") from exc


def parse_iso(text: str, zone: ZoneInfo) -> datetime:
    """ISO 8601 date or date-time; a date means local midnight, a naive time local time."""
    text = text.strip()
    if not text:
        raise ValueError("the date is empty")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"'{text[:40]}' is not an ISO 8601 date") from exc
    return value if value.tzinfo else value.replace(tzinfo=zone)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)
