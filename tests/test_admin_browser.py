"""The console in a real browser (headless Debian chromium, driven by Playwright): log in,
the dashboard's counts against `status --json` after a digest went to aiosmtpd, retry a
failed row and watch it send, erase a subscriber, lift the suppression that left, preview
a Spanish digest, and the lockout page; axe-core finds nothing on any console page, in
English and Spanish, light and dark. One served app and one browser for the module.

With ``SERIESFEED_TEST_SHOTS=/some/folder`` the dashboard is also photographed in both
languages, light and dark, at 1280 and 390 px wide."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from seriesfeed import actions
from seriesfeed.actions import audit, subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import ROOT, SEED_PAGE
from tests.harness import axe, figures
from tests.harness.browser import ARGS, CHROMIUM, playwright_or_skip
from tests.harness.web import live
from tests.smtp_server import SmtpServer, free_port, start_smtp
from tests.test_admin import HASH, PASSWORD

playwright_api = playwright_or_skip()

AUDITED = ["/admin/", "/admin/outbox", "/admin/digests", "/admin/digests/1",
           "/admin/subscribers", "/admin/subscribers/show?email=bea%40example.org",
           "/admin/subscribers/erase?email=bea%40example.org", "/admin/entries",
           "/admin/entries/edit?entry=1", "/admin/series", "/admin/sources",
           "/admin/preview?language=es", "/admin/audit"]


@dataclass
class Served:
    base: str
    config: Config
    store: Store
    smtp: SmtpServer
    browser: Any
    env: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("console-browser")
    controller, smtp = start_smtp()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    text = (ROOT / "config.toml").read_text(encoding="utf-8").split("[admin]")[0]
    (folder / "config.toml").write_text(text + f"""
[admin]
enabled = true
password_hash = "{HASH}"
""", encoding="utf-8")
    env = {"SERIESFEED_DATABASE_URL": f"sqlite:///{folder / 'c.sqlite3'}",
           "SERIESFEED_SMTP_HOST": smtp.host, "SERIESFEED_SMTP_PORT": str(smtp.port),
           "SERIESFEED_SMTP_SECURITY": "none", "SERIESFEED_WEB_PORT": str(port),
           "SERIESFEED_WEB_BASE_URL": base, "SERIESFEED_SECURITY_SECRET_KEY": "c" * 32}
    config = load_config(folder / "config.toml", env=env)
    store = open_store(config.database.url, config.base_dir)
    for email, lang in (("ann@example.org", "en"), ("gone@hard.example.net", "en"),
                        ("bea@example.org", "es"), ("cy@example.org", "es")):
        subscribers.add_subscriber(store, config, email, language=lang, frequency="daily",
                                   confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    smtp.recorder.rcpt_replies["hard.example.net"] = "550 5.1.1 no such user"
    asyncio.run(actions.send_digests(store, config, scheduled=False))
    try:
        with live(create_app(config, store), port), \
                playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield Served(base, config, store, smtp, browser, env)
            finally:
                browser.close()
    finally:
        store.close()
        controller.stop()


def _logged_in(served: Served, *, locale: str = "en", scheme: str = "light",
               width: int = 1280) -> tuple[Any, Any]:
    context = served.browser.new_context(locale=locale, color_scheme=scheme,
                                         viewport={"width": width, "height": 900},
                                         bypass_csp=True)
    page = context.new_page()
    page.goto(f"{served.base}/admin/")
    assert page.url.endswith("/admin/login")
    page.fill("input[name=account]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{served.base}/admin/")
    return context, page


def _drain(served: Served) -> None:
    """The daemon's next drain, in a thread of its own (Playwright's loop runs in this one)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, actions.send_digests(served.store, served.config,
                                                      scheduled=False)).result(timeout=60)


def _status_json(served: Served) -> dict[str, Any]:
    from click.testing import CliRunner

    from seriesfeed.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(served.config.path), "status",
                                      "--json"], env=served.env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def test_1_the_dashboard_agrees_with_status_json(served: Served) -> None:
    context, page = _logged_in(served)
    try:
        status = _status_json(served)
        shown = {cell.get_attribute("data-outbox"): int(cell.inner_text())
                 for cell in page.locator("td[data-outbox]").all()}
        assert shown == status["outbox"] and shown.get("failed") == 1
        people = {cell.get_attribute("data-subscribers"): int(cell.inner_text())
                  for cell in page.locator("td[data-subscribers]").all()}
        assert people == status["subscribers"]
        line = page.locator("#health-line").inner_text()
        assert line.startswith(("All is well", "Needs attention"))
        assert page.locator("svg.chart").count() >= 4
        assert page.locator("svg.chart title").first.text_content()
    finally:
        context.close()


def test_2_retry_a_failed_row_and_watch_it_send(served: Served) -> None:
    context, page = _logged_in(served)
    try:
        page.goto(f"{served.base}/admin/outbox?state=failed")
        row = page.locator("tr[data-row]").first
        row_id = row.get_attribute("data-row")
        del served.smtp.recorder.rcpt_replies["hard.example.net"]
        page.check(f"#retry-{row_id}")
        page.click("text=Retry the chosen messages")
        assert "Messages put back in the queue: 1." in page.locator("[role=status]").inner_text()
        _drain(served)
        page.goto(f"{served.base}/admin/outbox")
        assert page.locator(f"tr[data-row='{row_id}'] [data-state]").inner_text() == "sent"
        assert any(m.recipients == ["gone@hard.example.net"]
                   for m in served.smtp.recorder.messages)
    finally:
        context.close()


def test_3_erase_a_subscriber_then_lift_its_suppression(served: Served) -> None:
    context, page = _logged_in(served)
    try:
        page.goto(f"{served.base}/admin/subscribers?q=cy%40")
        page.click("text=cy@example.org")
        page.click("text=Erase this subscriber's data…")
        page.fill("input[name=confirm]", "cy@example.org")
        page.click("text=Erase for good")
        assert "erased" in page.locator("[role=status]").first.inner_text()
        assert page.locator("text=cy@example.org").count() == 0
        page.goto(f"{served.base}/admin/subscribers/show?email=cy%40example.org")
        assert page.locator("[data-suppressed]").count() == 1
        page.fill("textarea[name=reason]", "came back by letter, consent on file")
        page.click("text=Lift the suppression")
        assert "lifted" in page.locator("[role=status]").first.inner_text()
        rows = audit.log(served.store, limit=2)
        assert [r.action for r in rows] == ["subscribers.unsuppress", "subscribers.remove"]
    finally:
        context.close()


def test_4_preview_a_spanish_digest(served: Served) -> None:
    context, page = _logged_in(served, locale="es")
    try:
        assert page.locator("html").get_attribute("lang") == "es"
        page.click("text=Vista previa del resumen")
        page.select_option("select[name=language]", "es")
        page.click("text=Mostrar")
        assert page.locator("#preview-subject").get_attribute("lang") == "es"
        assert "Obrero Socialista" in page.locator("#preview-text").inner_text()
    finally:
        context.close()


def test_5_axe_finds_nothing_on_any_console_page(served: Served) -> None:
    source = axe.axe_source()
    found: list[str] = []
    # every locale in every scheme under --full; the fast tier pairs them (en light, es
    # dark), so each locale and each scheme is still audited on every page
    pairs = [("en", "light"), ("en", "dark"), ("es", "light"), ("es", "dark")]
    for locale, scheme in pairs if figures.FULL else [pairs[0], pairs[3]]:
        context, page = _logged_in(served, locale=locale, scheme=scheme)
        try:
            for path in AUDITED:
                page.goto(f"{served.base}{path}")
                assert page.locator("html").get_attribute("lang") == locale
                violations = axe.audit(page, source)
                shots = os.environ.get("SERIESFEED_TEST_SHOTS")
                if shots and scheme == "light" and locale == "en":
                    name = re.sub(r"[^a-z0-9]+", "-", path).strip("-") or "dashboard"
                    page.screenshot(path=f"{shots}/page-{name}.png", full_page=True)
                if violations:
                    found.append(f"{path} {locale} {scheme}: {axe.describe(violations)}")
            shots = os.environ.get("SERIESFEED_TEST_SHOTS")
            if shots:
                for width in (1280, 390):
                    page.set_viewport_size({"width": width, "height": 900})
                    page.goto(f"{served.base}/admin/")
                    page.screenshot(path=f"{shots}/dashboard-{locale}-{scheme}-{width}.png",
                                    full_page=True)
        finally:
            context.close()
    assert not found, "\n".join(found)


def test_6_the_lockout_page(served: Served) -> None:
    context = served.browser.new_context(locale="es", bypass_csp=True)
    page = context.new_page()
    source = axe.axe_source()
    try:
        page.goto(f"{served.base}/admin/login")
        for _ in range(5):
            page.fill("input[name=account]", "admin")
            page.fill("input[name=password]", "not the password")
            response = page.expect_response(re.compile(r".*/admin/login$"))
            with response as answered:
                page.click("main button[type=submit]")
        assert answered.value.status == 429
        assert answered.value.headers["retry-after"].isdigit()
        assert "Demasiadas contraseñas incorrectas" in page.locator("[role=alert]").inner_text()
        assert axe.audit(page, source) == []
        if os.environ.get("SERIESFEED_TEST_SHOTS"):
            page.screenshot(path=f"{os.environ['SERIESFEED_TEST_SHOTS']}/lockout-es.png")
    finally:
        context.close()
