"""A real browser (headless Debian chromium, driven by Playwright) through the Spanish subscribe
flow: series page -> subscribe -> confirmation mail at aiosmtpd -> confirm -> one-click
unsubscribe. Screenshots of each page are saved under the test's tmp_path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.config import load_config
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE
from tests.harness.browser import ARGS, CHROMIUM, playwright_or_skip
from tests.harness.web import live
from tests.smtp_server import SmtpServer, free_port

playwright_api = playwright_or_skip()


@pytest.fixture
def served(make_config, tmp_path: Path, smtp_server: SmtpServer  # type: ignore[no-untyped-def]
           ) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'b.sqlite3'}"},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"host": "127.0.0.1", "port": port, "base_url": base},
        security={"secret_key": "b" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    try:
        with live(create_app(config, store), port):
            yield base
    finally:
        store.close()


def test_spanish_subscribe_confirm_unsubscribe_in_chromium(
        served: str, smtp_server: SmtpServer, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{served}/es/reflections-on-the-iso-crisis/")
        assert page.locator("h1").inner_text() == "Reflections on the ISO crisis"
        assert "26 de marzo de 2019" in page.content()
        page.screenshot(path=str(shots / "1-series-page.png"), full_page=True)
        page.fill("input[name=email]", "lectora@example.org")
        page.fill("input[name=name]", "Lectora")
        page.select_option("select[name=frequency]", "daily")
        page.click("button[type=submit]")
        page.wait_for_selector("h1")
        assert page.locator("h1").inner_text() == "Revisa tu correo"
        page.screenshot(path=str(shots / "2-check-inbox.png"))

        mail = smtp_server.recorder.wait_for(1)[0]
        text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", text).group(0)  # type: ignore[union-attr]
        page.goto(link)
        assert page.locator("h1").inner_text() == "Confirma tu suscripción"
        page.screenshot(path=str(shots / "3-confirm.png"))
        page.click("button[type=submit]")
        page.wait_for_selector("text=Suscripción confirmada")
        page.screenshot(path=str(shots / "4-confirmed.png"))
        unsubscribe = page.locator("a", has_text="Darse de baja").get_attribute("href")
        assert unsubscribe is not None
        # RFC 8058 one-click: what a mail client sends, without cookies
        response = page.request.post(unsubscribe, data="List-Unsubscribe=One-Click", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status == 200
        page.goto(unsubscribe)
        page.screenshot(path=str(shots / "5-unsubscribe-page.png"))
        browser.close()
    assert len(list(shots.glob("*.png"))) == 5
    assert all(p.stat().st_size > 1000 for p in shots.glob("*.png"))
