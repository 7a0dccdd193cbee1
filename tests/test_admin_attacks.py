"""The console attacked from outside, as a hostile client and a careless operator would:
each test here is a break found that way (it failed before its fix) and now holds. The app
runs on a real uvicorn server over a real SQLite store (tests/harness/web.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from seriesfeed import actions, passwords
from seriesfeed.actions import audit
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import CliResult
from tests.harness.web import Reply, live
from tests.smtp_server import SmtpServer
from tests.test_admin import Console, _cookie_header, _cookies, _csrf, console_config
from tests.test_admin import console as console  # the fixture, re-exported
from tests.test_admin_views import mailed as mailed  # the fixture, re-exported

HUGE = "9" * 23  # past 64 bits: no row has such an id, SQLite cannot even bind it


@pytest.mark.parametrize("path", [f"/admin/digests/{HUGE}", "/admin/subscribers?page=%C2%B2",
                                  "/admin/outbox?page=%C2%B2", f"/admin/audit?page={HUGE}"])
def test_ids_past_64_bits_and_unicode_digits_are_not_found_not_500(console: Console,
                                                                   path: str) -> None:
    reply = console.get(path, console.session())
    assert reply.status in (200, 404), (path, reply.status, reply.body[:200])
    assert reply.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("path", "form"), [
    ("/admin/outbox/retry", {"id": HUGE}), ("/admin/outbox/retry", {"id": "²"}),
    (f"/admin/digests/{HUGE}/retry", {}),
    ("/admin/entries/edit", {"entry": HUGE, "part": "1"}),
    ("/admin/entries/edit", {"entry": "1", "part": "²"}),
])
def test_actions_with_ids_past_64_bits_are_refused_and_audited(console: Console, path: str,
                                                                form: dict[str, str]) -> None:
    cookies = console.session()
    before = audit.count(console.store)
    reply = console.post(path, cookies, form)
    assert reply.status in (303, 404), (path, form, reply.status, reply.body[:200])
    assert reply.headers["cache-control"] == "no-store"
    if reply.status == 303:  # the action ran and was refused: one row saying so
        rows = audit.log(console.store, limit=1)
        assert audit.count(console.store) == before + 1 and rows[0].ok is False


@pytest.mark.parametrize("command", [["digests", "show", HUGE], ["digests", "retry", HUGE],
                                     ["outbox", "retry", HUGE], ["entries", "show", HUGE],
                                     ["entries", "show", "²"]])
def test_the_cli_says_not_found_for_ids_past_64_bits(run_cli: Callable[..., CliResult],
                                                     make_config: Callable[..., Path],
                                                     command: list[str]) -> None:
    path = make_config()
    assert run_cli("--config", path, "init").code == 0
    result = run_cli("--config", path, *command)
    assert result.code == 1 and result.err.startswith("Error: "), result
    assert "Traceback" not in result.err


# -- every action leaves one audit row, refused ones too -----------------------------------

@pytest.mark.parametrize(("path", "form"), [
    ("/admin/subscribers/unsuppress", {"email": "ann@example.org", "reason": ""}),
    ("/admin/subscribers/unsuppress", {"email": "ann@example.org", "reason": "x" * 60_000}),
    ("/admin/subscribers/unsuppress", {"email": "not an address", "reason": "typo"}),
    ("/admin/subscribers/erase", {"email": "ann@example.org", "confirm": "bob@example.org"}),
    ("/admin/sources/poll", {"source": "no-such-source"}),
])
def test_a_refused_action_leaves_exactly_one_audit_row(console: Console, path: str,
                                                       form: dict[str, str]) -> None:
    cookies = console.session(source="127.0.1.60")
    before = audit.count(console.store)
    reply = console.post(path, cookies, form, source="127.0.1.60")
    assert reply.status == 303, (reply.status, reply.body[:300])
    assert audit.count(console.store) == before + 1, "no audit row for a refused action"
    row = audit.log(console.store, limit=1)[0]
    assert row.ok is False and row.account == "admin" and row.address == "127.0.1.60"
    assert row.session is not None and "error" in row.detail


def test_an_erased_address_never_comes_back_in_clear_in_the_audit_trail(
        console: Console) -> None:
    """Erase, then what a double submit or a second operator's stale page sends: erase
    again, set its status, lift its suppression twice. The refusals name the address as
    the trail keeps it (masked, with its hash), never in clear."""
    address = "Ann.Erased@Example.org"
    actions.subscribers.add_subscriber(console.store, console.config, address,
                                       confirmed=True)
    cookies = console.session()
    erase = {"email": address, "confirm": address}
    assert console.post("/admin/subscribers/erase", cookies, erase).status == 303
    for path, form in (("/admin/subscribers/erase", erase),
                       ("/admin/subscribers/status", {"email": address,
                                                      "status": "unsubscribed"}),
                       ("/admin/subscribers/unsuppress", {"email": address, "reason": "asked"}),
                       ("/admin/subscribers/unsuppress", {"email": address, "reason": "again"})):
        assert console.post(path, cookies, form).status == 303
    rows = audit.log(console.store, limit=20)
    assert [(r.action, r.ok) for r in rows[:5]] == [
        ("subscribers.unsuppress", False), ("subscribers.unsuppress", True),
        ("subscribers.set", False), ("subscribers.remove", False),
        ("subscribers.remove", True)]
    for row in rows:
        text = f"{row.target} {row.detail}".lower()
        assert address.lower() not in text, (row.action, row.target, row.detail)


# -- redirects stay in the console ----------------------------------------------------------

@pytest.mark.parametrize("back", ["/admin/../evil", "/admin/%2e%2e/evil", "/admin/./../../x",
                                  "//evil.example/admin/", "/admin/\\\\evil.example",
                                  "https://evil.example/admin/", "/admin/..%2fevil"])
def test_the_return_path_after_an_action_stays_under_admin(console: Console,
                                                            back: str) -> None:
    reply = console.post("/admin/outbox/retry", console.session(), {"id": "1", "back": back})
    assert reply.status == 303
    location = reply.headers["location"]
    # where a browser goes: the path after it resolves dot segments (encoded ones too)
    landed = urlsplit(urljoin("https://feeds.example.org/admin/outbox", unquote(location)))
    assert landed.netloc == "feeds.example.org", location
    assert landed.path.startswith("/admin/") and ".." not in landed.path, location


# -- passwords -------------------------------------------------------------------------------

def test_a_password_typed_composed_or_decomposed_is_the_same_password(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    """``café`` as one code point per letter (NFC: most keyboards) or ``e`` plus a
    combining accent (NFD: macOS file names, some input methods, a paste) is the same
    password to the person typing it; the hash was made from one, the login sends the
    other."""
    password = "Contraseña del café número uno"
    composed, decomposed = (unicodedata.normalize(f, password) for f in ("NFC", "NFD"))
    assert composed != decomposed
    config = console_config(make_config, tmp_path, admin={
        "password_hash": passwords.hash_password(decomposed)})
    store = open_store(config.database.url, config.base_dir)
    try:
        with live(create_app(config, store)) as server:
            attacked = Console(config, store, server)
            reply, _ = attacked.login(password=composed)
            assert reply.status == 303, reply.status
            wrong, _ = attacked.login(password=composed.replace("é", "e"))
            assert wrong.status == 401  # a different letter is still a different password
    finally:
        store.close()


# -- headers on every answer, a bug's 500 too --------------------------------------------------

def test_a_bugs_500_under_admin_still_carries_no_store_and_the_security_headers(
        console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ids past 64 bits above were 500s without Cache-Control or a CSP: Starlette
    answers an unexpected error outside every middleware. A verb that raises stands in
    for the next such bug (the unit under test is the answer around it)."""
    cookies = console.session()

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug")
    monkeypatch.setattr(actions.ops, "list_outbox", broken)
    reply = console.get("/admin/outbox", cookies)
    assert reply.status == 500
    assert reply.headers.get("cache-control") == "no-store", reply.headers
    assert "noindex" in reply.headers.get("x-robots-tag", "")
    assert "frame-ancestors 'none'" in reply.headers.get("content-security-policy", "")
    assert "RuntimeError" not in reply.body and "a bug" not in reply.body


# -- a retry submitted twice, and again after the drain ---------------------------------------

def test_a_double_submitted_retry_sends_once_with_the_rows_message_id(
        mailed: Console, smtp_server: SmtpServer) -> None:
    """Two clicks on Retry, a drain, then the stale page's Retry again: the recipient
    gets one message, with the Message-ID the row had before its first attempt; the two
    later clicks are refused (the row is not failed any more) and audited as such."""
    cookies = mailed.session()
    row = next(r for r in actions.ops.list_outbox(mailed.store, mailed.config, state="failed")
               if r["recipient"] == "gone@hard.example.net")
    del smtp_server.recorder.rcpt_replies["hard.example.net"]
    before = len(smtp_server.recorder.messages)
    form = {"id": str(row["id"]), "back": "/admin/outbox"}
    assert mailed.post("/admin/outbox/retry", cookies, form).status == 303
    assert mailed.post("/admin/outbox/retry", cookies, form).status == 303
    asyncio.run(actions.send_digests(mailed.store, mailed.config, scheduled=False))
    assert mailed.post("/admin/outbox/retry", cookies, form).status == 303
    asyncio.run(actions.send_digests(mailed.store, mailed.config, scheduled=False))
    sent = [m for m in smtp_server.recorder.messages[before:]
            if m.recipients == ["gone@hard.example.net"]]
    assert len(sent) == 1
    assert message_from_bytes(sent[0].data)["Message-ID"] == row["message_id"]
    rows = audit.log(mailed.store, action="outbox.retry", limit=3)
    assert [r.ok for r in rows] == [False, False, True]


# -- what held, kept as statements ---------------------------------------------------------------

def test_the_lockout_holds_across_two_nodes_and_forwarded_headers_from_a_peer(
        console: Console) -> None:
    """Five wrong passwords on one node, each with another X-Forwarded-For, Forwarded and
    X-Real-IP (the peer is not in [web] forwarded_allow_ips, so they count for nothing):
    the right password on a second node over the same store is a 429, with the console's
    headers."""
    def attempt(server: Console, n: int, password: str) -> Reply:
        form = server.server.request("GET", "/admin/login", source="127.0.1.81")
        return server.server.request("POST", "/admin/login", source="127.0.1.81", form={
            "csrf": _csrf(form.body), "account": f"guess{n}", "password": password},
            headers={"Cookie": _cookie_header(_cookies(form)),
                     "X-Forwarded-For": f"10.0.0.{n}", "Forwarded": f"for=10.1.0.{n}",
                     "X-Real-IP": f"10.2.0.{n}"})

    assert [attempt(console, n, "wrong wrong wrong").status for n in range(5)] == \
        [401, 401, 401, 401, 429]
    with live(create_app(console.config, console.store)) as second:
        other = Console(console.config, console.store, second)
        reply, _ = other.login(source="127.0.1.81")
    assert reply.status == 429 and 0 < int(reply.headers["retry-after"]) <= 900
    assert reply.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert {r.address for r in audit.log(console.store, limit=6)} == {"127.0.1.81"}


def test_a_password_too_long_to_log_in_with_is_refused_when_hashed(
        run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch,
        console: Console) -> None:
    """The login form reads 1,024 characters of a password: a longer one was hashed
    without a word and then could never log in; and a login that typed more than the
    longest password after the right ones was let in."""
    monkeypatch.setattr("sys.stdin", io.StringIO("p" * 1025 + "\n"))
    refused = run_cli("admin", "hash-password")
    assert refused.code == 1 and refused.err.startswith("Error: password: ")
    assert "1024" in refused.err and "Traceback" not in refused.err
    longest = "q" * 1024
    config = dataclasses.replace(console.config, admin=dataclasses.replace(
        console.config.admin, password_hash=passwords.hash_password(longest)))
    with live(create_app(config, console.store)) as server:
        other = Console(config, console.store, server)
        assert other.login(password=longest + "x", source="127.0.1.70")[0].status == 401
        assert other.login(password=longest, source="127.0.1.70")[0].status == 303


def test_a_new_password_ends_the_sessions_of_the_old_one(console: Console) -> None:
    """An operator who changes a leaked password (a new [admin] password_hash, a restart)
    expects whoever logged in with the old one to be out, not in for the session's
    remaining hours."""
    cookies = console.session()
    assert console.get("/admin/", cookies).status == 200
    config = dataclasses.replace(console.config, admin=dataclasses.replace(
        console.config.admin, password_hash=passwords.hash_password("a brand new password")))
    with live(create_app(config, console.store)) as server:
        after = Console(config, console.store, server).get("/admin/", cookies)
    assert after.status == 303 and after.headers["location"] == "/admin/login"
    # the same hash on another node (or after a restart) keeps the session
    with live(create_app(console.config, console.store)) as server:
        assert Console(console.config, console.store, server).get("/admin/",
                                                                  cookies).status == 200


# -- the cost a stranger can make the server pay ---------------------------------------------

def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text(encoding="ascii")
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmHWM:"))) / 1024


def test_a_flood_of_logins_runs_few_scrypts_at_once(console: Console,
                                                   figures: Callable[..., None]) -> None:
    """Every login that is not locked out runs scrypt (32 MiB, ~0.1 s), so timing tells
    nothing; 24 strangers posting at once made the server hold 24 of them in memory at
    once (the thread pool's size, 40, is the only bound) while the daemon also sends
    mail. Two at a time bounds the memory; a login beyond them is answered busy (503,
    Retry-After 1) before scrypt, as actions.console.SCRYPT_SLOTS decides."""
    forms = []
    for n in range(24):
        page = console.server.request("GET", "/admin/login", source=f"127.0.3.{n + 1}")
        forms.append((n, _csrf(page.body), _cookie_header(_cookies(page))))
    before = _peak_rss_mb()

    def attempt(item: tuple[int, str, str]) -> int:
        n, csrf, cookie = item
        reply = console.server.request(
            "POST", "/admin/login", source=f"127.0.3.{n + 1}", timeout=60,
            form={"csrf": csrf, "account": f"nobody{n}", "password": "not it at all"},
            headers={"Cookie": cookie})
        if reply.status == 503:  # busy: told when to come back, not left waiting
            assert reply.headers["retry-after"] == "1", reply.headers
        return reply.status
    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(attempt, forms))
    assert set(statuses) <= {401, 429, 503} and 401 in statuses, statuses
    grown = _peak_rss_mb() - before
    assert grown < 200, f"peak memory grew {grown:.0f} MB"
    figures(**{"logins at once": 24, "peak memory growth MB": round(grown)})
