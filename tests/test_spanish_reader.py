"""A Spanish reader, end to end, in headless chromium: every page of the seed store (as the
quick start builds it), the error pages, every Spanish feed and the Spanish mails carry no
English interface string (the English catalogue's msgids), and say lang="es".
Screenshots of the series page, the 404 and the digest are kept (SERIESFEED_SCREENSHOTS)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from seriesfeed import actions, tokens
from seriesfeed.actions import subscribers
from seriesfeed.actions.feeds import plan_feeds
from seriesfeed.config import Config, load_config
from seriesfeed.models import Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.bilingual import (
    SLUG,
    SPANISH_TITLE,
    english_fragments,
    english_in,
    feed_text,
    save_screenshot,
    seed_like_quick_start,
)
from tests.harness.browser import ARGS, CHROMIUM, playwright_or_skip
from tests.smtp_server import SmtpServer, free_port

playwright_api = playwright_or_skip()

pytestmark = pytest.mark.browser


@pytest.fixture
def world(make_config, tmp_path: Path, smtp_server: SmtpServer  # type: ignore[no-untyped-def]
          ) -> Iterator[tuple[str, Config, Store]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'es.sqlite3'}"},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"host": "127.0.0.1", "port": port, "base_url": base},
        security={"secret_key": "e" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    # a Spanish reader confirmed before the articles arrive gets them in a digest
    subscribers.add_subscriber(store, config, "digest@example.org", language="es",
                                 confirmed=True)
    seed_like_quick_start(store, config)
    server = uvicorn.Server(uvicorn.Config(create_app(config, store), host="127.0.0.1",
                                           port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield base, config, store
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


def _mail_texts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def test_a_spanish_reader_sees_no_english(world: tuple[str, Config, Store],
                                          smtp_server: SmtpServer, tmp_path: Path
                                          ) -> None:
    base, config, store = world
    english = english_fragments(config)
    assert "Page not found" in english and "Subscribe" in english  # the check can fail
    shots = tmp_path / "screenshots"
    shots.mkdir()
    seen: dict[str, str] = {}

    def look(page: Any, name: str, status: int | None = None) -> str:
        assert page.evaluate("document.documentElement.lang") == "es", name
        text = str(page.evaluate("document.body.innerText"))
        assert english_in(text, english) == [], (name, english_in(text, english))
        assert "CC BY-NC-ND 3.0" in text and "licencia Creative Commons" in text, name
        seen[name] = text
        return text

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(locale="es-ES")  # Accept-Language: es-ES
        page = context.new_page()

        response = page.goto(f"{base}/")  # redirected by Accept-Language
        assert response is not None and page.url == f"{base}/es/"
        text = look(page, "language index")
        assert SPANISH_TITLE in text and "2 artículos" in text
        page.screenshot(path=str(shots / "es-index.png"), full_page=True)

        page.goto(f"{base}/es/{SLUG}/")
        text = look(page, "series page")
        assert page.locator("h1").inner_text() == SPANISH_TITLE
        assert "Serie" in text and "26 de marzo de 2019" in text
        assert page.locator("a[hreflang=en]", has_text="Leer en inglés").count() == 2
        page.screenshot(path=str(shots / "es-series-page.png"), full_page=True)

        for path, name in ((f"/es/{SLUG}-nope/", "404 under /es/"), ("/nope", "404 negotiated"),
                           ("/favicon.ico", "404 favicon"), ("/feeds/es/nope.xml", "404 feed")):
            response = page.goto(base + path)
            assert response is not None and response.status == 404, path
            text = look(page, name)
            assert "Página no encontrada" in text
        page.goto(f"{base}/es/{SLUG}-nope/")
        page.screenshot(path=str(shots / "es-404.png"), full_page=True)

        response = page.goto(f"{base}/confirm/not-a-token")
        assert response is not None and response.status == 400
        assert "ha caducado" in look(page, "400 bad token")

        page.goto(f"{base}/subscribe?lang=es")
        look(page, "subscribe form")

        page.goto(f"{base}/es/{SLUG}/")
        page.fill("input[name=email]", "lectora@example.org")
        page.click("button[type=submit]")
        page.wait_for_selector("h1")
        text = look(page, "check your inbox")
        assert "Revisa tu correo" in text and "•••@example.org" in text
        assert page.locator("a", has_text=SPANISH_TITLE).count() == 1
        page.screenshot(path=str(shots / "es-check-inbox.png"), full_page=True)

        confirmation = smtp_server.recorder.wait_for(1)[0].message
        mail_text, mail_html = _mail_texts(confirmation)
        for part in (str(confirmation["Subject"]), mail_text, mail_html):
            assert english_in(part, english) == [], english_in(part, english)
        link = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", mail_text).group(0)  # type: ignore[union-attr]
        page.goto(link)
        assert "l•••a@example.org" in look(page, "confirm page")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Suscripción confirmada")
        look(page, "confirmed")

        with store.read() as conn:
            from seriesfeed.store import subscribers as sq

            sub = sq.get(conn, email="lectora@example.org")
        assert sub is not None and sub.id is not None
        key = tokens.ensure_secret_key(config)
        page.goto(tokens.preferences_link(config, key, sub.id))
        assert "l•••a@example.org" in look(page, "preferences")
        page.goto(tokens.unsubscribe_link(config, key, sub.id))
        look(page, "unsubscribe page")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Te has dado de baja")
        look(page, "unsubscribed")

        # answers to requests a browser does not navigate to, shown in the browser
        own = {"Origin": base, "Content-Type": "application/x-www-form-urlencoded",
               "Accept-Language": "es-ES,es;q=0.9"}
        form = "email=otra%40example.org&language=es&frequency=weekly"
        for status, name, body, headers in (
                (403, "403 cross-site", form, {**own, "Origin": "https://evil.example"}),
                (413, "413 too large", "x=" + "y" * 20_000, own),
                (405, "405", "", own)):
            target = f"{base}/es/" if status == 405 else f"{base}/subscribe"
            answer = page.request.post(target, data=body, headers=headers)
            assert answer.status == status, name
            page.set_content(answer.text())
            look(page, name)
        for _ in range(6):  # the per-client limit: 5 a minute
            answer = page.request.post(f"{base}/subscribe", data=form, headers=own)
        assert answer.status == 429
        page.set_content(answer.text())
        assert "Demasiadas solicitudes" in look(page, "429")

        # the digest, through the real SMTP server
        # (in a thread of its own: Playwright's sync API runs an event loop in this one)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, actions.send_digests(
                store, config, frequency=Frequency.WEEKLY, scheduled=False)).result()
        digest = next(m.message for m in smtp_server.recorder.wait_for(2)
                      if m.message["To"] == "digest@example.org")
        assert str(digest["Subject"]) == f"{SPANISH_TITLE}: 2 artículos nuevos"
        digest_text, digest_html = _mail_texts(digest)
        assert english_in(digest_text, english) == [], english_in(digest_text, english)
        assert "Léelo:" in digest_text and "También en inglés:" in digest_text
        page.set_content(digest_html)
        text = look(page, "digest")
        assert "26 de marzo de 2019" in text and "Darse de baja" in text
        page.screenshot(path=str(shots / "es-digest.png"), full_page=True)
        browser.close()

    for name in ("es-series-page.png", "es-404.png", "es-digest.png", "es-index.png",
                 "es-check-inbox.png"):
        assert (shots / name).stat().st_size > 5000
        save_screenshot(shots / name, name)
    assert len(seen) == 19

    # and every Spanish feed document
    for doc in plan_feeds(config, store):
        if doc.path.startswith("/feeds/es/"):
            text = feed_text(doc.path, doc.body)
            assert english_in(text, english) == [], (doc.path, english_in(text, english))
            assert "licencia Creative Commons (by-nc-nd 3.0)" in text, doc.path
