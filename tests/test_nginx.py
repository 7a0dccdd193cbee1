"""The README's nginx snippet, as written there, in front of the daemon: Debian's nginx on a
loopback port serves a `feeds build` output with the daemon's headers and hands everything
else, every error page included, to the daemon, in every configured language.

Skipped, with the reason, where nginx is not installed (`apt-get install nginx-light`)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn

from seriesfeed import actions
from seriesfeed.config import load_config
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import ROOT, SEED_PAGE, ConfigFactory
from tests.smtp_server import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
if not Path(NGINX).exists():
    pytest.skip("nginx is not installed (apt-get install nginx-light)", allow_module_level=True)

SERIES = "reflections-on-the-iso-crisis"
HUB = "https://hub.example.org/"
FRENCH = """
[languages.fr]
name = "Français"
locale = "fr_FR"
fallback = "original"
"""


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"```nginx\n(.*?)```", text, re.DOTALL)
    assert len(found) == 1, "README.md has one nginx snippet"
    return found[0]


@pytest.fixture
def front(make_config: ConfigFactory, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(nginx's base URL, the daemon's base URL) with the seed built and served."""
    daemon_port, nginx_port = free_port(), free_port()
    base = "https://feeds.example.org"
    path = make_config(extra=FRENCH, database={"url": f"sqlite:///{tmp_path / 'n.sqlite3'}"},
                       web={"host": "127.0.0.1", "port": daemon_port, "base_url": base},
                       websub={"hub": HUB}, security={"secret_key": "n" * 32})
    shutil.copytree(ROOT / "tests/data/locale", path.parent / "locale")
    path.write_text(path.read_text(encoding="utf-8").replace(
        'catalogues = ""', 'catalogues = "locale"', 1), encoding="utf-8")
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    www = tmp_path / "www"
    actions.build_feeds(store, config, www)
    server = uvicorn.Server(uvicorn.Config(create_app(config, store), host="127.0.0.1",
                                           port=daemon_port, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    snippet = (readme_snippet().replace("/var/www/seriesfeed", str(www))
               .replace("127.0.0.1:8080", f"127.0.0.1:{daemon_port}"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read tmp_path (0700)
    temp = "".join(f"{kind}_temp_path {prefix / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\ninclude /etc/nginx/mime.types;\naccess_log off;\n{temp}"
        f"server {{\nlisten 127.0.0.1:{nginx_port};\nserver_name localhost;\n"
        f"{snippet}\n}}\n}}\n", encoding="utf-8")
    nginx = None
    thread.start()
    try:
        nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                  "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        up = False
        while time.monotonic() < deadline and not up:
            assert nginx.poll() is None, nginx.stderr.read().decode() if nginx.stderr else ""
            try:
                httpx.get(f"http://127.0.0.1:{nginx_port}/robots.txt", timeout=1)
                up = server.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        assert up, "nginx or the daemon did not answer within 10 s"
        yield f"http://127.0.0.1:{nginx_port}", f"http://127.0.0.1:{daemon_port}"
    finally:
        if nginx is not None:
            if nginx.poll() is None:
                os.killpg(nginx.pid, signal.SIGTERM)
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(nginx.pid, signal.SIGKILL)
                nginx.wait(timeout=10)
            if nginx.stderr:
                nginx.stderr.close()
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def test_every_languages_404_is_the_daemons_page_in_that_language(
        front: tuple[str, str]) -> None:
    nginx, _ = front
    for lang, words in [("es", "Página no encontrada"), ("en", "Page not found"),
                        ("fr", "Page introuvable")]:
        for path in (f"/{lang}/no-such-page/", f"/feeds/{lang}/no-such-feed.xml"):
            r = httpx.get(nginx + path, headers={"Accept-Language": lang})
            assert r.status_code == 404, path
            assert r.headers["content-language"] == lang, path
            assert words in r.text, (path, r.text[:300])
            assert "nginx" not in r.text


def test_static_feeds_keep_their_headers_and_answer_304(front: tuple[str, str]) -> None:
    nginx, daemon = front
    for name, media in [("atom.xml", "application/atom+xml"),
                        ("rss.xml", "application/rss+xml"),
                        ("feed.json", "application/feed+json")]:
        for folder in ("es", f"es/{SERIES}", "fr"):
            path = f"/feeds/{folder}/{name}"
            r = httpx.get(nginx + path)
            assert r.status_code == 200, path
            assert r.headers["content-type"] == f"{media}; charset=utf-8", path
            assert r.headers["cache-control"] == "public, max-age=300", path
            direct = httpx.get(daemon + path)
            assert r.content == direct.content, path  # the file is what the daemon serves
            assert r.headers["link"] == direct.headers["link"] == (
                f'<{HUB}>; rel="hub", <https://feeds.example.org{path}>; rel="self"')
            etag = r.headers["etag"]
            again = httpx.get(nginx + path, headers={"If-None-Match": etag})
            assert again.status_code == 304, path
            assert again.headers["cache-control"] == "public, max-age=300"
            assert again.headers["link"] == r.headers["link"]
            assert again.headers["etag"] == etag


def test_pages_come_from_files_and_the_rest_from_the_daemon(front: tuple[str, str]) -> None:
    nginx, _ = front
    for lang in ("en", "es", "fr"):
        page = httpx.get(f"{nginx}/{lang}/{SERIES}/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "public, max-age=300"
        assert f'<html lang="{lang}">' in page.text
        assert page.headers["server"].startswith("nginx")
    root = httpx.get(nginx + "/", headers={"Accept-Language": "es"})
    assert root.status_code == 302 and root.headers["location"] == "/es/"
    form = httpx.get(nginx + "/subscribe", headers={"Accept-Language": "es"})
    assert form.status_code == 200 and 'lang="es"' in form.text
    robots = httpx.get(nginx + "/robots.txt")
    assert robots.status_code == 200 and "Sitemap:" in robots.text
