"""The operator's console: configuration, the password hash command, login and logout,
the session every /admin route needs, CSRF, the lockout, equal timing and the audit trail.
The app runs on a real uvicorn server (tests/harness/web.py) over a real SQLite store."""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.routing import Route

from seriesfeed import actions, passwords
from seriesfeed.actions import audit
from seriesfeed.config import Config, load_config
from seriesfeed.errors import ConfigError
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE, CliResult
from tests.harness.web import LiveServer, Reply, live

BASE = "https://feeds.example.org"
PASSWORD = "correct horse battery staple"
# one hash for the whole module: scrypt costs ~0.1 s, and every test needs one
HASH = passwords.hash_password(PASSWORD)


@dataclass
class Console:
    config: Config
    store: Store
    server: LiveServer

    def login(self, account: str = "admin", password: str = PASSWORD,
              source: str = "127.0.0.1") -> tuple[Reply, dict[str, str]]:
        """GET the form (its pre-session cookie and CSRF field), then POST it."""
        form = self.server.request("GET", "/admin/login", source=source)
        cookies = _cookies(form)
        reply = self.server.request("POST", "/admin/login", source=source, form={
            "csrf": _csrf(form.body), "account": account, "password": password},
            headers={"Cookie": _cookie_header(cookies)})
        cookies.update(_cookies(reply))
        return reply, cookies

    def session(self, source: str = "127.0.0.1") -> dict[str, str]:
        reply, cookies = self.login(source=source)
        assert reply.status == 303, reply
        assert "sf_admin" in cookies
        return cookies

    def get(self, path: str, cookies: dict[str, str], **kw: str) -> Reply:
        return self.server.request("GET", path, headers={"Cookie": _cookie_header(cookies)},
                                   **kw)

    def post(self, path: str, cookies: dict[str, str], form: dict[str, str],
             csrf_from: str = "/admin/", **kw: str) -> Reply:
        """POST with the CSRF field of the page ``csrf_from``."""
        page = self.get(csrf_from, cookies)
        return self.server.request("POST", path, form={"csrf": _csrf(page.body), **form},
                                   headers={"Cookie": _cookie_header(cookies)}, **kw)


def _csrf(body: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', body)
    assert match, body[:800]
    return match.group(1)


def _cookies(reply: Reply) -> dict[str, str]:
    """The cookies a reply sets (an empty value: deleted)."""
    found = {}
    for header in reply.set_cookies:
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0].strip('"')
    return found


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items() if v)


def console_config(make_config: Callable[..., Path], tmp_path: Path,
                   admin: dict[str, object] | None = None, extra: str = "",
                   **sections: dict[str, object]) -> Config:
    return load_config(make_config(
        extra,
        database={"url": f"sqlite:///{tmp_path / 'console.sqlite3'}"},
        web={"host": "127.0.0.1", "port": 8080, "base_url": BASE},
        security={"secret_key": "s" * 32},
        admin={"enabled": True, "password_hash": HASH, **(admin or {})}, **sections), env={})


@pytest.fixture
def console(make_config: Callable[..., Path], tmp_path: Path) -> Iterator[Console]:
    config = console_config(make_config, tmp_path)
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    try:
        with live(create_app(config, store)) as server:
            yield Console(config, store, server)
    finally:
        store.close()


# -- configuration and the hash command ------------------------------------------------

def test_the_console_is_off_by_default_and_then_has_no_route(make_config: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    config = load_config(make_config(), env={})
    assert config.admin.enabled is False and config.admin.account == "admin"
    assert config.admin.session_hours == 12
    app = create_app(config, open_store(f"sqlite:///{tmp_path / 'off.sqlite3'}"))
    assert not [r for r in app.routes if getattr(r, "path", "").startswith("/admin")]


@pytest.mark.parametrize(("section", "key", "value", "said"), [
    ("admin", "password_hash", "plain-text-password", "not a hash made by"),
    ("admin", "password_hash", "scrypt$1024$8$1$AAAA$BBBB", "out of range"),
    ("admin", "listen", "nowhere", "host:port"),
    ("admin", "account", "two words", "account name"),
    ("admin", "session_hours", 0, "session_hours"),
])
def test_config_errors_name_the_key(make_config: Callable[..., Path], section: str, key: str,
                                    value: object, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(make_config(**{section: {"enabled": True, key: value}}), env={})
    assert caught.value.key == f"{section}.{key}"
    assert f"{section}.{key}" in str(caught.value) and said in str(caught.value)


def test_the_hash_comes_from_the_environment_too(make_config: Callable[..., Path]) -> None:
    config = load_config(make_config(), env={"SERIESFEED_ADMIN_PASSWORD_HASH": HASH})
    assert config.admin.password_hash == HASH
    with pytest.raises(ConfigError) as caught:
        load_config(make_config(), env={"SERIESFEED_ADMIN_PASSWORD_HASH": "oops"})
    assert "SERIESFEED_ADMIN_PASSWORD_HASH" in str(caught.value)
    assert caught.value.key == "admin.password_hash"


def test_hash_password_round_trip_and_refusals(run_cli: Callable[..., CliResult],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\nsecond line\n"))
    made = run_cli("admin", "hash-password")
    assert made.code == 0, made
    line = made.out.strip()
    assert re.fullmatch(r"scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}", line)
    assert passwords.verify(PASSWORD, line)
    assert not passwords.verify(PASSWORD + " ", line)
    assert not passwords.verify("second line", line)
    for given, said in (("\n", "empty"), ("short pass\n", "at least 12")):
        monkeypatch.setattr("sys.stdin", io.StringIO(given))
        refused = run_cli("admin", "hash-password")
        assert refused.code == 1 and refused.out == ""
        assert refused.err.startswith("Error: ") and said in refused.err
        assert "Traceback" not in refused.err


# -- the session every route needs -----------------------------------------------------

def test_every_admin_route_refuses_without_a_session(console: Console) -> None:
    """Walk the app's routes: each /admin path (but the login form) answers a GET with a
    redirect to the login page and a POST with 401/403, without a session and with a
    forged or ended one."""
    app = create_app(console.config, console.store)
    paths = [r.path for r in app.routes if isinstance(r, Route)
             and r.path.startswith("/admin") and r.path not in ("/admin", "/admin/login")]
    assert len(paths) >= 15, paths
    ended = console.session()
    console.post("/admin/logout", ended, {})
    forged = {"sf_admin": "eyJzIjowLCJ0IjoxLCJiIjoieCJ9.AAAA"}
    for cookies in ({}, forged, ended):
        for path in paths:
            concrete = path.replace("{id:int}", "1")
            for method in ("GET", "POST"):
                reply = console.server.request(
                    method, concrete, form={} if method == "POST" else None,
                    headers={"Cookie": _cookie_header(cookies)} if cookies else None)
                if method == "GET" and reply.status == 303:
                    assert reply.headers["location"] == "/admin/login", (path, reply)
                else:
                    assert reply.status in (401, 403, 405), (method, path, reply.status)
                assert reply.headers["cache-control"] == "no-store"
                assert "noindex" in reply.headers["x-robots-tag"]
    assert console.server.request("GET", "/admin").headers["location"] == "/admin/"


def test_login_then_logout(console: Console) -> None:
    reply, cookies = console.login()
    assert reply.status == 303 and reply.headers["location"] == "/admin/"
    session_part = next(c for c in reply.set_cookies if c.startswith("sf_admin="))
    for flag in ("HttpOnly", "SameSite=strict", "Path=/admin", "Secure"):
        assert flag.lower() in session_part.lower(), session_part
    home = console.get("/admin/", cookies)
    assert home.status == 200 and "Dashboard" in home.body
    assert home.headers["cache-control"] == "no-store"
    assert console.post("/admin/logout", cookies, {}).status == 303
    assert console.get("/admin/", cookies).headers.get("location") == "/admin/login"
    rows = audit.log(console.store, limit=10)
    assert [(r.action, r.ok) for r in rows] == [("logout", True), ("login", True)]
    assert rows[0].session == rows[1].session and rows[1].address == "127.0.0.1"


def test_a_wrong_password_and_an_unknown_account_fail_alike(console: Console) -> None:
    wrong, _ = console.login(password="not the password")
    unknown, _ = console.login(account="root")
    assert wrong.status == unknown.status == 401
    assert not [c for c in wrong.set_cookies if c.startswith("sf_admin=")]
    assert wrong.body.replace(_csrf(wrong.body), "") == unknown.body.replace(
        _csrf(unknown.body), "")
    rows = audit.log(console.store, limit=10)
    assert [(r.action, r.ok, r.account) for r in rows] == [("login", False, "root"),
                                                           ("login", False, "admin")]


# -- CSRF and Origin -------------------------------------------------------------------

def test_csrf_is_refused_missing_wrong_or_from_another_origin(console: Console) -> None:
    cookies = console.session()
    before = audit.count(console.store)
    other = console.session(source="127.0.0.9")  # another session's field is not ours
    foreign_field = _csrf(console.get("/admin/", other).body)
    for form, headers in (({}, {}), ({"csrf": "nonsense"}, {}), ({"csrf": foreign_field}, {}),
                          ({"csrf": _csrf(console.get("/admin/", cookies).body)},
                           {"Origin": "https://evil.example"}),
                          ({"csrf": _csrf(console.get("/admin/", cookies).body)},
                           {"Sec-Fetch-Site": "cross-site"})):
        reply = console.server.request("POST", "/admin/outbox/retry",
                                       form={**form, "id": "1"},
                                       headers={"Cookie": _cookie_header(cookies), **headers})
        assert reply.status == 403, (form, headers, reply.status)
    assert audit.count(console.store) == before + 1  # the second login, nothing else
    # the login form: its field is bound to the pre-session cookie
    page = console.server.request("GET", "/admin/login")
    refused = console.server.request("POST", "/admin/login", form={
        "csrf": _csrf(page.body), "account": "admin", "password": PASSWORD})
    assert refused.status == 403 and not [c for c in refused.set_cookies
                                          if c.startswith("sf_admin=")]


# -- lockout and timing ----------------------------------------------------------------

def test_five_wrong_passwords_lock_the_client_out(console: Console) -> None:
    for _ in range(4):
        assert console.login(password="wrong password!", source="127.0.1.7")[0].status == 401
    fifth, _ = console.login(password="wrong password!", source="127.0.1.7")
    assert fifth.status == 429 and "Retry-After".lower() in fifth.headers
    locked, _ = console.login(source="127.0.1.7")  # even the right password now
    assert locked.status == 429
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    # another client logs in (the account has 5 failures too, but a success elsewhere ...)
    reply, _ = console.login(source="127.0.1.8")
    assert reply.status == 429  # ... the account is locked as well: five for it
    rows = audit.log(console.store, limit=2)
    assert all(r.action == "login" and not r.ok and r.detail == {"reason": "locked out"}
               for r in rows)


def test_failures_from_many_clients_lock_the_account(console: Console) -> None:
    for n in range(5):
        console.login(password="wrong password!", source=f"127.0.1.{20 + n}")
    reply, _ = console.login(source="127.0.1.40")
    assert reply.status == 429 and int(reply.headers["retry-after"]) > 0


def test_a_success_resets_the_clients_count(console: Console) -> None:
    for _ in range(3):
        console.login(account="someone", password="wrong password!", source="127.0.1.50")
    assert console.login(source="127.0.1.50")[0].status == 303
    for _ in range(4):  # four more: with the first three forgiven, not locked
        console.login(account="other", password="wrong password!", source="127.0.1.50")
    assert console.login(source="127.0.1.50")[0].status == 303


def test_a_login_past_two_scrypt_runs_is_a_503_that_says_when_to_come_back(
        console: Console) -> None:
    slots = actions.console.SCRYPT_SLOTS
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)
    try:
        busy, cookies = console.login(source="127.0.1.60")
    finally:
        slots.release()
        slots.release()
    assert busy.status == 503 and busy.headers["retry-after"] == "1"
    assert "sf_admin" not in cookies and 'name="password"' in busy.body
    assert console.login(source="127.0.1.60")[0].status == 303


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
def test_a_wrong_password_costs_what_a_right_one_costs(console: Console,
                                                       figures: Callable[..., None]) -> None:
    samples: dict[str, list[float]] = {"right": [], "wrong": [], "unknown": []}
    order = random.Random(24)
    for r in range(12):
        # shuffled per round: a difference that follows the kind survives, one that
        # follows the position in the round averages out (as S2 does)
        kinds = list(samples)
        order.shuffle(kinds)
        for kind in kinds:
            source = f"127.0.2.{r * 3 + list(samples).index(kind) + 1}"
            account = f"nobody{r}" if kind == "unknown" else "admin"
            password = PASSWORD if kind == "right" else "wrong password!"
            reply, _ = console.login(account=account, password=password, source=source)
            assert reply.status == (303 if kind == "right" else 401)
            samples[kind].append(reply.seconds)
    medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    spread = max(medians.values()) - min(medians.values())
    # scrypt is most of a login (~100 ms here, more on a loaded machine, where everything
    # slows alike): a path that skipped it would differ by most of the median, so a
    # quarter of it is the bound (25 ms on an idle machine)
    assert spread < 0.25 * min(medians.values()), medians
    figures(**{f"{k} ms": round(v, 1) for k, v in medians.items()},
            **{"median spread ms": round(spread, 1)})


# -- [admin] listen: the console on its own address only ---------------------------------

def test_admin_listen_serves_the_console_there_and_not_on_the_public_port(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    import asyncio
    import threading

    from seriesfeed.web.embedded import serve_until
    from tests.smtp_server import free_port

    public, private = free_port(), free_port()
    config = console_config(make_config, tmp_path, admin={"listen": f"127.0.0.1:{private}"})
    config = config.listening_on("127.0.0.1", public)
    store = open_store(config.database.url, config.base_dir)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(serve_until(config, store, stop),), daemon=True)
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 10
        while True:
            try:
                side = LiveServer(private).request("GET", "/admin/login", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the console did not listen"
                time.sleep(0.05)
        assert side.status == 200 and 'name="password"' in side.body
        assert side.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in side.headers["content-security-policy"]
        on_public = LiveServer(public).request("GET", "/admin/login")
        assert on_public.status == 404
        assert LiveServer(public).request("GET", "/healthz").status == 200
        assert LiveServer(private).request("GET", "/healthz").status == 404
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()
        store.close()


def test_with_a_session_the_wrong_method_is_a_405(console: Console) -> None:
    cookies = console.session()
    assert console.get("/admin/logout", cookies).status == 405
    assert console.get("/admin/outbox/retry", cookies).headers["allow"] == "POST"
    page = console.post("/admin/outbox", cookies, {})
    assert page.status == 405 and page.headers["allow"] == "GET, HEAD"
    assert console.server.request("DELETE", "/admin/", headers={
        "Cookie": _cookie_header(cookies)}).status == 405


def test_the_daemon_names_the_console_when_it_starts(make_config: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    from seriesfeed.daemon import startup_urls

    config = console_config(make_config, tmp_path, admin={"listen": "127.0.0.1:8081"})
    store = open_store(config.database.url, config.base_dir)
    try:
        assert "  console: http://127.0.0.1:8081/admin/" in startup_urls(config, store)
        bare = console_config(make_config, tmp_path, admin={"password_hash": ""})
        said = [line for line in startup_urls(bare, store) if "console:" in line]
        assert said == [f"  console: {BASE}/admin/ (no [admin] password_hash yet: "
                        "`seriesfeed admin hash-password`)"]
    finally:
        store.close()
