"""The console's pages and actions over a real store and a real SMTP server: the dashboard
says what `status --json` says, every action goes through its verb and leaves one audit
row, and every page is in the operator's language."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.actions import audit, subscribers
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE, CliResult
from tests.harness.web import Reply, live
from tests.smtp_server import SmtpServer
from tests.test_admin import Console, console_config

PAGES = ["/admin/", "/admin/outbox", "/admin/outbox?state=failed", "/admin/digests",
         "/admin/digests/1", "/admin/subscribers", "/admin/subscribers?status=confirmed&q=ex",
         "/admin/subscribers/show?email=ann%40example.org",
         "/admin/subscribers/erase?email=ann%40example.org", "/admin/entries",
         "/admin/entries?language=es", "/admin/entries/edit?entry=2", "/admin/series",
         "/admin/sources",
         "/admin/preview?language=es", "/admin/audit", "/admin/login"]


@pytest.fixture
def mailed(make_config: Callable[..., Path], tmp_path: Path,
           smtp_server: SmtpServer) -> Iterator[Console]:
    """A console over a store whose first digests went to aiosmtpd, two rows failed."""
    config = console_config(make_config, tmp_path, smtp={
        "host": smtp_server.host, "port": smtp_server.port, "security": "none",
        "connections": 2})
    store = open_store(config.database.url, config.base_dir)
    for email, lang in (("ann@example.org", "en"), ("gone@hard.example.net", "en"),
                        ("bea@example.org", "es"), ("cy@hard.example.net", "es")):
        subscribers.add_subscriber(store, config, email, language=lang, frequency="daily",
                                   confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    smtp_server.recorder.rcpt_replies["hard.example.net"] = "550 5.1.1 no such user"
    asyncio.run(actions.send_digests(store, config, scheduled=False))
    try:
        with live(create_app(config, store)) as server:
            yield Console(config, store, server)
    finally:
        store.close()


def _done(reply: Reply) -> str:
    """What the action said it did: the code in the cookie its redirect sets."""
    said = next((c for c in reply.set_cookies if c.startswith("sf_admin_done=")), "")
    found = re.search(r"done%3D([a-z-]+)|done=([a-z-]+)", said)
    return (found.group(1) or found.group(2)) if found else ""


def _numbers(body: str, attribute: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(rf'data-{attribute}="(\w+)">(\d+)<', body)}


def test_every_page_renders_in_english_and_spanish(mailed: Console) -> None:
    cookies = mailed.session()
    for path in PAGES:
        for lang, word in (("en", "Log out"), ("es", "Cerrar sesión")):
            jar = {} if path == "/admin/login" else cookies  # logged in, it redirects
            reply = mailed.server.request("GET", path, headers={
                "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
                "Accept-Language": lang})
            assert reply.status == 200, (path, lang, reply.status, reply.body[:300])
            assert f'<html lang="{lang}">' in reply.body
            assert (word if jar else ("Log in", "Iniciar sesión")[lang == "es"]) in reply.body
            assert reply.headers["cache-control"] == "no-store"


def test_the_dashboard_counts_are_status_json(mailed: Console,
                                              run_cli: Callable[..., CliResult]) -> None:
    cookies = mailed.session()
    body = mailed.get("/admin/", cookies).body
    result = run_cli("--config", str(mailed.config.path), "status", "--json")
    assert result.code == 0, result
    status = json.loads(result.out)
    assert _numbers(body, "outbox") == status["outbox"]
    assert _numbers(body, "subscribers") == status["subscribers"]
    assert status["outbox"].get("failed") == 2
    assert "Needs attention" in body or "All is well" in body


def test_a_failed_row_retried_from_the_console_is_sent(mailed: Console,
                                                       smtp_server: SmtpServer) -> None:
    cookies = mailed.session()
    failed = actions.ops.list_outbox(mailed.store, mailed.config, state="failed")
    row = next(r for r in failed if r["recipient"] == "gone@hard.example.net")
    del smtp_server.recorder.rcpt_replies["hard.example.net"]
    reply = mailed.post("/admin/outbox/retry", cookies, {"id": str(row["id"]),
                                                         "back": "/admin/outbox"})
    assert reply.status == 303 and _done(reply) == "retried"
    said = next(c for c in reply.set_cookies if c.startswith("sf_admin_done="))
    page = mailed.get(reply.headers["location"],
                      {**cookies, "sf_admin_done": said.split(";")[0].split("=", 1)[1]})
    assert "Messages put back in the queue: 1." in page.body
    asyncio.run(actions.send_digests(mailed.store, mailed.config, scheduled=False))
    after = actions.ops.list_outbox(mailed.store, mailed.config, email="gone@hard.example.net")
    assert [r["state"] for r in after] == ["sent"]
    entry = audit.log(mailed.store, limit=1)[0]
    assert (entry.action, entry.target, entry.ok, entry.detail) == (
        "outbox.retry", str(row["id"]), True, {"retried": [row["id"]]})


def test_each_action_leaves_one_audit_row(mailed: Console, smtp_server: SmtpServer) -> None:
    cookies = mailed.session()
    first_es = next(e for e in actions.list_entries(mailed.store, "es"))
    steps = [
        ("/admin/digests/1/retry", {}, "digests.retry"),
        ("/admin/subscribers/status", {"email": "bea@example.org", "status": "unsubscribed"},
         "subscribers.set"),
        ("/admin/entries/edit", {"entry": str(first_es.seq), "part": "",
                                 "title": "Carta a las bases (corregida)",
                                 "summary": first_es.summary}, "entries.set"),
        ("/admin/series/text", {"series": "reflections-on-the-iso-crisis", "language": "es",
                                "title": "Reflexiones sobre la crisis de la ISO",
                                "description": "", "url": ""}, "series.set"),
        ("/admin/preview/test", {"to": "me@example.org", "language": "es",
                                 "frequency": "daily"}, "digest.test-send"),
        ("/admin/subscribers/erase", {"email": "ann@example.org",
                                      "confirm": "ann@example.org"}, "subscribers.remove"),
        ("/admin/subscribers/unsuppress", {"email": "ann@example.org",
                                           "reason": "asked by phone to come back"},
         "subscribers.unsuppress"),
    ]
    for path, form, action in steps:
        before = audit.count(mailed.store)
        reply = mailed.post(path, cookies, form)
        assert reply.status == 303, (path, reply.status, reply.body[:300])
        assert _done(reply) not in ("", "failed"), (path, reply.set_cookies)
        rows = audit.log(mailed.store, limit=1)
        assert audit.count(mailed.store) == before + 1, path
        assert rows[0].action == action, (path, rows[0])
        assert rows[0].account == "admin" and rows[0].session and rows[0].address == \
            "127.0.0.1"
    fixed = actions.show_entry(mailed.store, str(first_es.seq))
    assert (fixed.title, fixed.id, fixed.seq) == ("Carta a las bases (corregida)",
                                                  first_es.id, first_es.seq)
    assert audit.log(mailed.store, action="entries.set", limit=1)[0].detail == {
        "title": "Carta a las bases (corregida)"}
    # the erased address left no copy in the trail; its test copy reached the SMTP server
    assert not [r for r in audit.log(mailed.store, limit=50) if
                r.target == "ann@example.org"]
    assert any(m.recipients == ["me@example.org"] for m in smtp_server.recorder.messages)
    page = mailed.get("/admin/audit", cookies)
    assert page.body.count("data-audit=") == audit.count(mailed.store)


def test_a_refused_erase_needs_the_address_twice(mailed: Console) -> None:
    cookies = mailed.session()
    reply = mailed.post("/admin/subscribers/erase", cookies,
                        {"email": "ann@example.org", "confirm": "someone@else.org"})
    assert reply.status == 303 and _done(reply) == "failed"
    shown = actions.subscriber_admin.show_subscriber(mailed.store, mailed.config,
                                                     "ann@example.org")
    assert shown.subscriber is not None


def test_refusals_leave_no_clear_address_in_the_audit_trail(mailed: Console) -> None:
    """An erasure scrubs only the subscriber it removes: an address a refusal writes after
    it (erase twice: the back button; a test copy to an erased address) would stay for
    good. Every address in such a row is masked, its hash kept."""
    from sqlalchemy import select

    from seriesfeed.store.tables import admin_audit

    cookies = mailed.session()
    erase = {"email": "ann@example.org", "confirm": "ann@example.org"}
    assert _done(mailed.post("/admin/subscribers/erase", cookies, erase)) == "erased"
    assert _done(mailed.post("/admin/subscribers/erase", cookies, erase)) == "failed"
    refused = mailed.post("/admin/preview/test", cookies, {
        "to": "Ann@Example.org", "language": "en", "frequency": "daily"})
    assert _done(refused) == "failed"
    with mailed.store.read() as conn:
        rows = conn.execute(select(admin_audit.c.action, admin_audit.c.target,
                                   admin_audit.c.detail, admin_audit.c.ok)).all()
    failed = [r for r in rows if not r.ok]
    assert {r.action for r in failed} == {"subscribers.remove", "digest.test-send"}, rows
    written = " ".join(f"{r.target} {r.detail}" for r in rows).lower()
    assert "ann@example.org" not in written, rows
    assert "a•••@example.org" in written


def test_the_preview_releases_no_scheduled_entry(mailed: Console) -> None:
    """A GET shows; it never publishes (a link scanner, a reload, a prefetch)."""
    from sqlalchemy import insert, select

    from seriesfeed.clock import now_utc
    from seriesfeed.store.tables import held_entries

    cookies = mailed.session()
    newest = max(actions.list_entries(mailed.store, "en"), key=lambda e: e.seq or 0)
    with mailed.store.write() as conn:  # scheduled, and its time has come
        conn.execute(insert(held_entries).values(entry_seq=newest.seq,
                                                 release_at=now_utc()))
    for path in ("/admin/preview?language=en&frequency=daily",
                 "/admin/preview/html?language=en&frequency=daily"):
        assert mailed.get(path, cookies).status in (200, 404), path
    with mailed.store.read() as conn:
        assert conn.execute(select(held_entries.c.entry_seq)).scalars().all() == [newest.seq]


def test_saving_only_a_part_leaves_the_texts_and_updated_alone(mailed: Console) -> None:
    """The form sends every field back: a summary that is empty in the store (or was
    never given), or one whose lines a browser sends with CRLF, is no change."""
    from sqlalchemy import update

    from seriesfeed.store.tables import entries

    cookies = mailed.session()
    first, second = actions.list_entries(mailed.store, "en")[:2]
    with mailed.store.write() as conn:
        conn.execute(update(entries).where(entries.c.seq == first.seq).values(summary=""))
        conn.execute(update(entries).where(entries.c.seq == second.seq).values(
            summary="Line one.\nLine two."))
    for entry, summary, part in ((first, "", "7"), (second, "Line one.\r\nLine two.", "8")):
        before = actions.show_entry(mailed.store, str(entry.seq))
        reply = mailed.post("/admin/entries/edit", cookies, {
            "entry": str(entry.seq), "part": part, "title": entry.title,
            "summary": summary})
        assert _done(reply) == "entry", reply.set_cookies
        after = actions.show_entry(mailed.store, str(entry.seq))
        assert after.pinned == int(part)
        assert (after.updated, after.summary) == (before.updated, before.summary)
        row = audit.log(mailed.store, action="entries.set", limit=1)[0]
        assert row.detail == {"part": int(part)}, row.detail


def test_the_language_switch_sticks(mailed: Console) -> None:
    cookies = mailed.session()
    switched = mailed.get("/admin/?lang=es", cookies)
    assert '<html lang="es">' in switched.body and "Panel" in switched.body
    chosen = next(c for c in switched.set_cookies if c.startswith("sf_admin_lang="))
    assert "path=/admin" in chosen.lower()
    again = mailed.get("/admin/outbox", {**cookies, "sf_admin_lang": "es"})
    assert '<html lang="es">' in again.body


def test_a_spanish_preview(mailed: Console) -> None:
    cookies = mailed.session()
    page = mailed.get("/admin/preview?language=es&frequency=daily", cookies)
    assert 'id="preview-subject"' in page.body and 'lang="es"' in page.body
    html = mailed.get("/admin/preview/html?language=es&frequency=daily", cookies)
    assert html.status == 200 and "Obrero Socialista" in html.body


def test_poll_a_source_now_and_read_its_history(make_config: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    from tests.harness.http_source import Route, source_server

    with source_server() as publisher:
        publisher.routes["/series/"] = Route(SEED_PAGE.read_bytes(),
                                             content_type="text/plain; charset=utf-8")
        config = console_config(make_config, tmp_path, extra=f"""
[sources.sw-page]
url = "{publisher.url('/series/')}"
format = "page"
""")
        store = open_store(config.database.url, config.base_dir)
        try:
            with live(create_app(config, store)) as server:
                console = Console(config, store, server)
                cookies = console.session()
                reply = console.post("/admin/sources/poll", cookies, {"source": "sw-page"})
                assert reply.status == 303 and _done(reply) == "polled"
                row = audit.log(store, limit=1)[0]
                assert (row.action, row.target, row.ok) == ("sources.poll", "sw-page", True)
                history = console.get("/admin/sources/sw-page", cookies)
                assert history.status == 200 and "1 poll kept." in history.body
                listed = console.get("/admin/sources", cookies)
                assert "sw-page" in listed.body and publisher.requests_to("/series/")
                assert len(actions.list_entries(store, "en")) == 18
                assert console.get("/admin/sources/nope", cookies).status == 404
        finally:
            store.close()


def test_a_link_cannot_put_words_on_a_console_page(mailed: Console) -> None:
    cookies = mailed.session()
    page = mailed.get("/admin/?done=failed&error=Your+session+ended:+log+in+at+evil.example",
                      cookies)
    assert page.status == 200 and "evil.example" not in page.body
    assert 'role="status"' not in page.body
