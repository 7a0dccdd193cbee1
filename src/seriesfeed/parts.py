"""Part numbers of a series: which part of M each entry is, from plain rows.

A number is stored only when an editor set it (``entries set ID --part N``, or an import
that states it); every other original is numbered by publication order (ties: the store's
order, so entries of one day keep the order they were stored in), skipping the numbers
editors took. Moving one entry therefore shifts only the computed entries between its old
and new place, and never renumbers another editor's choice. A translation carries its
original's number; M counts the originals (or the highest number an editor set, if higher).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["PartRow", "number_parts"]


@dataclass(frozen=True)
class PartRow:
    seq: int
    series: int  # the series' key (any hashable number)
    published: datetime
    original: int | None  # the seq this entry translates
    pinned: int | None  # the part an editor set


def number_parts(rows: Iterable[PartRow]) -> dict[int, tuple[int, int]]:
    """seq -> (part, parts in the series) for every row."""
    by_seq = {r.seq: r for r in rows}
    out: dict[int, tuple[int, int]] = {}
    per_series: dict[int, list[PartRow]] = {}
    for r in by_seq.values():
        if _original_of(r, by_seq) is r:
            per_series.setdefault(r.series, []).append(r)
    for originals in per_series.values():
        taken = {r.pinned for r in originals if r.pinned is not None}
        count = max(len(originals), max(taken, default=0))
        numbers = (n for n in range(1, len(originals) + len(taken) + 1) if n not in taken)
        for r in sorted(originals, key=lambda r: (r.published, r.seq)):
            part = r.pinned if r.pinned is not None else next(numbers)
            out[r.seq] = (part, max(count, part))
    for r in by_seq.values():
        if r.seq not in out:
            found = out.get(_original_of(r, by_seq).seq)
            if found is not None:
                out[r.seq] = found
    return out


def _original_of(r: PartRow, by_seq: dict[int, PartRow]) -> PartRow:
    """The entry a translation (or a translation of one) comes from; an entry whose
    original is not among the rows (held back, removed) counts as an original."""
    seen = {r.seq}
    while r.original is not None and r.original in by_seq and r.original not in seen:
        r = by_seq[r.original]
        seen.add(r.seq)
    return r
