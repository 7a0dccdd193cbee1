"""Every page and mail passes axe-core (WCAG 2.0/2.1/2.2 A and AA, and best practices) with zero
violations of any impact, in every configured language, light and dark, desktop and phone.

A real server, a real relay (aiosmtpd) for the confirmation mail, Debian's chromium driven by
Playwright, axe-core pinned from the npm registry (tests/harness/axe.py). A failure lists
each rule with the nodes that broke it; screenshots of every render are written to the
folder SERIESFEED_SCREENSHOTS names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seriesfeed import actions, tokens
from seriesfeed.actions import subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.models import Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE
from tests.harness import figures
from tests.harness.axe import audit, axe_source, describe
from tests.harness.browser import ARGS, CHROMIUM, playwright_or_skip
from tests.harness.web import live
from tests.smtp_server import SmtpServer, free_port

playwright_api = playwright_or_skip()

pytestmark = pytest.mark.browser
SERIES = "reflections-on-the-iso-crisis"
# a third language by configuration alone: its pages must pass as the shipped ones do
FRENCH = {"name": "Français", "rights": "Licence CC BY-NC-ND 3.0"}
ALL_MODES = [("light", 1280, 900), ("dark", 1280, 900), ("light", 390, 844), ("dark", 390, 844)]


def modes() -> list[tuple[str, int, int]]:
    """Every scheme at every width under --full; the fast tier pairs them (light desktop,
    dark phone), so each scheme and each width is still audited on every page."""
    return ALL_MODES if figures.FULL else [ALL_MODES[0], ALL_MODES[3]]


def shoot(page: Any, path: Path) -> None:
    """Screenshots to look at, when SERIESFEED_SCREENSHOTS names a folder (they cost time)."""
    folder = os.environ.get("SERIESFEED_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / path.name), full_page=True)


@dataclass
class World:
    base: str
    config: Config
    store: Store
    smtp: SmtpServer


@pytest.fixture
def world(make_config, tmp_path: Path, smtp_server: SmtpServer  # type: ignore[no-untyped-def]
          ) -> Iterator[World]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'a11y.sqlite3'}"},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"host": "127.0.0.1", "port": port, "base_url": base},
        security={"secret_key": "a" * 32}, digests={"archive": True}), env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.import_entries(store, config, SEED_PAGE)
        with live(create_app(config, store), port):
            yield World(base, config, store, smtp_server)
    finally:
        store.close()


def _links(world: World, lang: str, tag: str) -> dict[str, str]:
    """Token pages for fresh subscribers of LANG: confirm (pending), preferences and
    unsubscribe (confirmed)."""
    config, store = world.config, world.store
    key = tokens.ensure_secret_key(config)
    pending = subscribers.add_subscriber(store, config, f"p-{tag}@example.org",
                                         language=lang).subscriber
    reader = subscribers.add_subscriber(store, config, f"r-{tag}@example.org",
                                        language=lang, confirmed=True).subscriber
    assert pending is not None and reader is not None
    assert pending.id is not None and reader.id is not None
    subscribers.queue_confirmation(store, config, pending, _now())
    sent_at = _confirm_sent_at(store, pending.id)
    return {
        "confirm": tokens.confirm_link(config, key, pending.id, sent_at),
        "preferences": tokens.preferences_link(config, key, reader.id),
        "unsubscribe": tokens.unsubscribe_link(config, key, reader.id),
    }


def _now() -> Any:
    from seriesfeed.clock import now_utc

    return now_utc()


def _confirm_sent_at(store: Store, subscriber_id: int) -> Any:
    from seriesfeed.store import subscribers as sq

    with store.read() as conn:
        sent = sq.confirm_sent_at(conn, subscriber_id)
    assert sent is not None
    return sent


def _digest_page(world: World, lang: str) -> str:
    """The public page of a digest in LANG (one digest recorded for it, the first time)."""
    from seriesfeed.store import digests as dq

    config, store = world.config, world.store
    with store.read() as conn:
        found = dq.list_digests(conn, lang)
    if not found:
        from seriesfeed.actions.digests import record_digests
        from seriesfeed.store import subscribers as sq

        reader = subscribers.add_subscriber(store, config, f"digest-{lang}@example.org",
                                            language=lang, frequency="daily",
                                            confirmed=True).subscriber
        assert reader is not None and reader.id is not None
        with store.write() as conn:
            sq.update_fields(conn, reader.id, last_seq=0)  # everything is news to them
        record_digests(store, config, Frequency.DAILY, _now(), scheduled=False)
        with store.read() as conn:
            found = dq.list_digests(conn, lang)
    key = tokens.ensure_secret_key(config)
    return f"/{lang}/digests/{tokens.view_token(key, found[0].id, lang)}/"


def test_every_page_passes_axe_in_every_language_and_mode(world: World, tmp_path: Path
                                                          ) -> None:
    source = axe_source()
    shots = tmp_path / "screenshots"
    failures: list[str] = []
    audited = 0

    def check(page: Any, name: str) -> None:
        nonlocal audited
        page.wait_for_load_state("load")
        shoot(page, shots / f"{name}.png")
        found = audit(page, source)
        audited += 1
        if found:
            failures.append(f"== {name} ({page.url})\n{describe(found)}")

    languages = list(world.config.languages)
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for lang in languages:
                for n, (scheme, width, height) in enumerate(modes()):
                    tag = f"{lang}-{scheme}-{width}"
                    context = browser.new_context(
                        locale=lang, color_scheme=scheme, bypass_csp=True,
                        viewport={"width": width, "height": height},
                        extra_http_headers={"Accept-Language": lang})
                    page = context.new_page()
                    for name, path in [("index", f"/{lang}/"),
                                       ("series", f"/{lang}/{SERIES}/"),
                                       ("subscribe", "/subscribe"),
                                       ("not-found", f"/{lang}/no-such-page/"),
                                       ("bad-token", "/confirm/not-a-token"),
                                       ("archive", f"/{lang}/digests/"),
                                       ("digest-page", _digest_page(world, lang))]:
                        page.goto(world.base + path)
                        check(page, f"{tag}-{name}")
                    # the manage page, and the answer to it
                    page.goto(f"{world.base}/{lang}/manage/")
                    check(page, f"{tag}-manage")
                    # the subscribe form, from the series page, to the check-inbox page
                    page.goto(f"{world.base}/{lang}/{SERIES}/")
                    page.fill("#subscribe input[name=email]", f"form-{n}-{lang}@example.org")
                    page.click("#subscribe button[type=submit]")
                    check(page, f"{tag}-check-inbox")
                    links = _links(world, lang, tag)
                    for name in ("confirm", "preferences", "unsubscribe"):
                        page.goto(links[name])
                        check(page, f"{tag}-{name}")
                        page.click("form button[type=submit]")
                        check(page, f"{tag}-{name}-done")
                    # the pages a reader meets coming back: a used confirm link, and
                    # preferences after unsubscribing (with its way back)
                    page.goto(links["confirm"])
                    check(page, f"{tag}-confirm-again")
                    page.goto(links["preferences"])
                    check(page, f"{tag}-preferences-unsubscribed")
                    context.close()
        finally:
            browser.close()
    assert audited >= len(languages) * len(modes()) * 17
    assert not failures, "\n".join(failures)


def test_every_mail_passes_axe(world: World, tmp_path: Path) -> None:
    source = axe_source()
    config, store = world.config, world.store
    mails: dict[str, str] = {}
    for lang in config.languages:
        sub = subscribers.add_subscriber(store, config, f"mail-{lang}@example.org",
                                         language=lang).subscriber
        assert sub is not None
        subscribers.send_confirmation(store, config, sub)
        mail = world.smtp.recorder.wait_for(len(mails) + 1)[-1]
        html = mail.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        mails[f"confirm-{lang}"] = html
        preview = actions.preview_digest(store, config, lang, Frequency.WEEKLY)
        assert preview is not None
        mails[f"digest-{lang}"] = preview.html
        mails.update(_new_mails(world, lang))
    failures: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for scheme, width, height in modes():
                context = browser.new_context(color_scheme=scheme, bypass_csp=True,
                                              viewport={"width": width, "height": height})
                page = context.new_page()
                for name, html in mails.items():
                    page.set_content(html)
                    shoot(page, tmp_path / f"{name}-{scheme}-{width}.png")
                    found = audit(page, source)
                    if found:
                        failures.append(f"== {name} {scheme} {width}\n{describe(found)}")
                context.close()
        finally:
            browser.close()
    assert len(mails) == 5 * len(config.languages)
    assert all(re.search(r"<title>[^<]+</title>", html) for html in mails.values()), \
        "every mail has a <title>"
    assert not failures, "\n".join(failures)


def _new_mails(world: World, lang: str) -> dict[str, str]:
    """The welcome, the manage page's preferences link and a catch-up part in LANG."""
    from email import message_from_bytes, policy

    from seriesfeed import messages
    from seriesfeed.actions.delivery import render_digest
    from seriesfeed.store import entries as eq

    config, store = world.config, world.store
    key = tokens.ensure_secret_key(config)
    reader = subscribers.add_subscriber(store, config, f"new-{lang}@example.org",
                                        language=lang, confirmed=True,
                                        start="first").subscriber
    assert reader is not None and reader.id is not None

    def html(data: bytes) -> str:
        msg = message_from_bytes(data, policy=policy.SMTP)
        return str(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]

    welcome = actions.welcome.welcome_of(store, config, reader)
    with store.read() as conn:
        first = eq.list_entries(conn, language=lang, newest_first=False)[0]
    assert first.seq is not None
    part = render_digest(store, config, lang, first.seq - 1, first.seq, (), catch_up=True)
    assert part is not None
    return {
        f"welcome-{lang}": html(messages.welcome_message(
            config, key, reader.id, reader.email, f"<w.{lang}@example.org>", welcome)),
        f"manage-{lang}": html(messages.manage_message(
            config, key, reader.id, reader.email, lang, f"<m.{lang}@example.org>")),
        f"catch-up-{lang}": part.html,
    }
