"""Every number the console reads (outbox ids, page numbers, an entry's part) is ASCII
digits within what the store can hold: ``str.isdigit`` also says yes to "١" (which
``int`` reads as 1, so a hand-made form acted on row 1) and to "²" (which ``int``
refuses: a 500)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from seriesfeed import actions
from seriesfeed.errors import MAX_STORED_INT, ValidationError, read_stored_int
from tests.test_admin import Console
from tests.test_admin_views import _done, mailed

__all__ = ["mailed"]  # the fixture, shared with the console's view tests

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("text", ["١", "²", "1.0", "-1", " ", "", "1e3", "0x1", "١٢",
                                  str(MAX_STORED_INT + 1), "9" * 5000])
def test_only_ascii_digits_within_the_store_read_as_a_number(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        read_stored_int(text, "page", minimum=1)
    assert caught.value.field == "page"


def test_a_number_reads_as_it_is_written() -> None:
    assert read_stored_int("42", "id") == 42
    assert read_stored_int(" 7 ", "id", minimum=1) == 7
    assert read_stored_int(str(MAX_STORED_INT), "id") == MAX_STORED_INT
    with pytest.raises(ValidationError):
        read_stored_int("0", "id", minimum=1)


def test_another_scripts_digit_retries_no_outbox_row(mailed: Console) -> None:
    cookies = mailed.session()
    failed = actions.ops.list_outbox(mailed.store, mailed.config, state="failed")
    row = failed[0]["id"]
    reply = mailed.post("/admin/outbox/retry", cookies,
                        {"id": str(row).translate(ARABIC_INDIC)})
    assert reply.status == 303 and _done(reply) == "failed", reply
    after = {r["id"]: r["state"] for r in actions.ops.list_outbox(mailed.store,
                                                                  mailed.config)}
    assert after[row] == "failed"
    # the ASCII id still works
    reply = mailed.post("/admin/outbox/retry", cookies, {"id": str(row)})
    assert _done(reply) == "retried"


def test_a_page_number_that_is_no_number_shows_the_first_page(mailed: Console) -> None:
    cookies = mailed.session()
    for path in ("/admin/outbox", "/admin/digests", "/admin/subscribers", "/admin/entries",
                 "/admin/audit"):
        for page in ("²", "١", "9" * 5000, str(2**70)):
            reply = mailed.get(f"{path}?{urlencode({'page': page})}", cookies)
            assert reply.status == 200, (path, page[:10], reply.status, reply.body[:300])


def test_a_part_that_is_no_number_is_refused_by_name(mailed: Console) -> None:
    cookies = mailed.session()
    entry = actions.list_entries(mailed.store, "en")[0]
    for part in ("²", "١", str(2**70)):
        reply = mailed.post("/admin/entries/edit", cookies, {
            "entry": str(entry.seq), "part": part, "title": entry.title,
            "summary": entry.summary or ""})
        assert reply.status == 303 and _done(reply) == "failed", (part, reply.status)
    assert actions.show_entry(mailed.store, str(entry.seq)).pinned is None
