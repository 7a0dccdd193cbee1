"""Stored text meant to run in the operator's browser, shown by the console in chromium
(headless Debian chromium, driven by Playwright) with the page's CSP bypassed, so only
the console's own escaping stands between the payload and the operator."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import uvicorn

from seriesfeed import actions
from seriesfeed.store import open_store
from seriesfeed.web import create_app, create_console_app
from tests.conftest import SEED_PAGE
from tests.harness.web import live
from tests.smtp_server import free_port
from tests.test_admin import PASSWORD, Console, console_config

# chromium and Playwright as the console's other browser tests drive them (importing it
# skips this module too where either is missing)
from tests.test_admin_browser import ARGS, CHROMIUM, playwright_api

# each sets window.__xss if it ever runs
PAYLOADS = ['<script>window.__xss=1</script>', '"><img src=x onerror="window.__xss=2">',
            "'><svg onload=window.__xss=3>", "</textarea><script>window.__xss=4</script>"]
PAGES = ["/admin/", "/admin/subscribers", "/admin/subscribers/show?email=xss%40example.org",
         "/admin/entries", "/admin/entries/edit?entry=1", "/admin/series", "/admin/audit",
         "/admin/preview", "/admin/preview/html", "/admin/subscribers?q=%3Cscript%3E"]

# where the payload must be visible as text (so the test cannot pass by not showing it)
SHOWN = {"/admin/subscribers/show?email=xss%40example.org": PAYLOADS[0],
         "/admin/entries": "T " + PAYLOADS[0], "/admin/audit": PAYLOADS[1]}


def test_stored_payloads_never_run_in_the_console(make_config: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    port = free_port()
    config = console_config(make_config, tmp_path)
    base = f"http://127.0.0.1:{port}"
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, base_url=base))
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    joined = " ".join(PAYLOADS)
    actions.subscribers.add_subscriber(store, config, "xss@example.org", name=joined,
                                       confirmed=True)
    actions.entries.set_entry_texts(store, config, "1", title="T " + joined,
                                    summary="S " + joined)
    actions.set_series_text(store, config, "reflections-on-the-iso-crisis", "en",
                            title="ST " + joined, description="D " + joined)
    try:
        with live(create_app(config, store), port) as server, \
                playwright_api.sync_playwright() as pw:
            # the audit trail gets a payload as the account of a failed login
            Console(config, store, server).login(account=PAYLOADS[1], password="wrong one",
                                                 source="127.0.1.77")
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                context = browser.new_context(bypass_csp=True)
                page = context.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(f"{base}/admin/login")
                page.fill("input[name=account]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_url(f"{base}/admin/")
                for path in PAGES:
                    page.goto(base + path)
                    page.wait_for_load_state("load")
                    ran = page.evaluate("window.__xss || 0")
                    injected = page.evaluate(
                        "document.querySelectorAll('[onerror],[onload],script').length")
                    assert (ran, injected) == (0, 0), path
                    if path in SHOWN:  # the payload is on the page, as text
                        assert SHOWN[path] in page.inner_text("main"), path
                assert not dialogs
            finally:
                browser.close()
    finally:
        store.close()


def _private_address() -> str | None:
    """This host's own non-loopback IPv4 address (a browser treats http:// there as
    insecure, unlike 127.0.0.1), or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))  # no packet is sent: this only picks a route
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_admin_listen_on_a_private_address_over_http_lets_the_operator_log_in(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    """README: ``[admin] listen`` on 127.0.0.1 "(or a private interface)". The public site
    is https, so every console cookie was ``Secure``; a browser at http://10.x:8081 drops
    Secure cookies from a plain-http page, and the login form answered "This form has
    expired" forever. The console's cookies follow the scheme it is reached by."""
    address = _private_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    port = free_port()
    config = console_config(make_config, tmp_path, admin={"listen": f"{address}:{port}"})
    assert config.public_url.startswith("https://")
    store = open_store(config.database.url, config.base_dir)
    server = uvicorn.Server(uvicorn.Config(create_console_app(config, store), host=address,
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        base = f"http://{address}:{port}"
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_context().new_page()
                page.goto(f"{base}/admin/login")
                page.fill("input[name=account]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_load_state("load")
                assert page.url == f"{base}/admin/", page.inner_text("main")[:300]
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()
