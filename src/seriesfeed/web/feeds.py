"""Serve the feeds, series and article pages, the sitemap and robots.txt from memory with
ETag, Last-Modified, 304 and gzip.

The documents are rebuilt when the store's fingerprint changes (checked on every request:
a few aggregates), so a committed change is never answered with a stale 304.

The endpoint is async so that a conditional GET costs no thread-pool hop: on SQLite it asks
``PRAGMA data_version`` on the event loop through a probe that never waits (no busy
timeout, no contended lock: a probe that cannot answer at once says so), and only when it
cannot tell, or something was committed, is the store asked in a worker thread. Each
document's validators and 304 headers are computed once, when its bytes are planned.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from seriesfeed import actions
from seriesfeed.actions import Store
from seriesfeed.actions.feeds import FeedDocument, etag_of
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.web import localized

__all__ = [
    "CACHE_CONTROL", "NotModified", "Served", "SiteCache", "answer", "home", "not_found_page",
    "routes", "serve",
]

CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class Served:
    doc: FeedDocument
    etag: str
    gzipped: bytes
    modified: datetime  # when these bytes were first served, as far as this process knows
    last_modified: str  # ``modified`` as an HTTP date
    # the response headers of each variant (identity, gzip), ETag first: the validators a
    # conditional GET compares and the whole of a 304, computed once per plan
    identity_headers: dict[str, str]
    gzip_headers: dict[str, str]
    # the same, encoded for the wire: a 304 is sent as it is
    identity_raw: tuple[tuple[bytes, bytes], ...]
    gzip_raw: tuple[tuple[bytes, bytes], ...]


class NotModified(Response):
    """A 304 whose headers were encoded once, when the document was planned."""

    def __init__(self, raw: tuple[tuple[bytes, bytes], ...]) -> None:
        self.status_code = 304
        self.background = None
        self.body = b""
        self.raw_headers = list(raw)  # a copy: a middleware may append to it


def _raw(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())


class SiteCache:
    """The live site's documents by URL path, each with its ETag, gzipped bytes and
    Last-Modified; made again when the verb planned the site again."""

    def __init__(self, config: Config, store: Store) -> None:
        self.live = actions.LiveSite(config, store)
        self.lock = threading.Lock()
        self.version = 0
        self.docs: dict[str, Served] = {}
        self.started = now_utc().replace(microsecond=0)

    def fresh(self) -> dict[str, Served] | None:
        """The documents when the store surely has not changed since they were planned,
        asked without waiting (safe on the event loop); None when that cannot be told at
        once: then ``current`` (in a thread) decides."""
        if not self.live.unchanged():
            return None
        version = self.live.plan[0]
        return self.docs if version == self.version else None

    def current(self) -> dict[str, Served]:
        version, docs = self.live.current()
        if version > self.version:  # never back to an older plan a slow thread still holds
            with self.lock:
                if version > self.version:
                    self.docs = {d.path: self._served(d) for d in docs}
                    self.version = version
        return self.docs

    def _served(self, doc: FeedDocument) -> Served:
        """Last-Modified is when the bytes changed, not the newest entry's date: an entry
        imported today with an older date (or a removal) changes a feed without moving its
        dates, and an If-Modified-Since client would get a stale 304. Unchanged bytes keep
        their time; changed ones get now; at start, the later of the content's date and the
        start (the store may have changed while no server watched it)."""
        etag = etag_of(doc.body)
        previous = self.docs.get(doc.path)
        if previous is not None and previous.etag == etag:
            modified = previous.modified
        elif self.version == 0:
            modified = max(doc.last_modified.astimezone(UTC).replace(microsecond=0),
                           self.started)
        else:  # HTTP dates have whole seconds: a change within the second must still move it
            modified = now_utc().replace(microsecond=0)
            if previous is not None:
                modified = max(modified, previous.modified + timedelta(seconds=1))
        last_modified = format_datetime(modified, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified,
                   "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        hub = self.live.config.websub.hub
        # WebSub 4: discovery by Link headers, on feeds (not pages, the sitemap, robots.txt)
        if hub and doc.path.startswith("/feeds/"):
            headers["Link"] = (f'<{hub}>; rel="hub", '
                               f'<{self.live.config.public_url}{doc.path}>; rel="self"')
        zipped = {**headers, "ETag": etag[:-1] + '-gz"'}
        return Served(doc, etag, gzip.compress(doc.body, mtime=0), modified, last_modified,
                      headers, zipped, _raw(headers), _raw(zipped))


def _not_modified(request: Request, served: Served, etag: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm == etag:  # what a cache sends back: the one validator it was given
        return True
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags or served.etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return since is not None and since.tzinfo is not None and served.modified <= since
    return False


def not_found_page(config: Config, request: Request) -> HTMLResponse:
    """The 404 page, in the language of the path or of the reader's Accept-Language."""
    return localized.error_page(config, request, 404)


async def serve(config: Config, cache: SiteCache, request: Request) -> Response:
    """A feed or page from memory: 308 to its canonical path, 304, gzip, HEAD."""
    docs = cache.fresh()
    if docs is None:  # something was committed, or the probe could not tell: ask the store
        docs = await asyncio.to_thread(cache.current)
    return answer(config, docs, request)


def answer(config: Config, docs: dict[str, Served], request: Request) -> Response:
    path = request.scope["path"]  # not request.url: building the whole URL costs a 304 a tenth
    served = docs.get(path) or (docs.get(path + "/") if not path.endswith("/") else None)
    if served is None:
        return not_found_page(config, request)
    if served.doc.path != path:  # /en/slug -> /en/slug/
        return RedirectResponse(served.doc.path, status_code=308)
    gz = "gzip" in request.headers.get("accept-encoding", "").lower()
    headers = served.gzip_headers if gz else served.identity_headers
    if _not_modified(request, served, headers["ETag"]):
        return NotModified(served.gzip_raw if gz else served.identity_raw)
    body = served.gzipped if gz else served.doc.body
    headers = {**headers, "Content-Encoding": "gzip"} if gz else headers
    if request.method == "HEAD":
        return Response(b"", headers={**headers, "Content-Length": str(len(body))},
                        media_type=served.doc.media_type)
    return Response(body, headers=headers, media_type=served.doc.media_type)


def home(config: Config, request: Request) -> Response:
    """To the language index the reader's Accept-Language prefers."""
    lang = localized.negotiated_language(config, request)
    return RedirectResponse(f"/{lang}/", status_code=302,
                            headers={"Vary": "Accept-Language",
                                     "Cache-Control": "private, max-age=0"})


def routes(config: Config, store: Store) -> tuple[list[BaseRoute], list[BaseRoute]]:
    """The routes under /feeds/ and /sitemaps/ (nothing else lives there: matched first, so a
    feed request is not tried against every other pattern), and the pages' routes (matched
    last: their /{lang}/… patterns would catch the other modules' paths)."""
    page = functools.partial(serve, config, SiteCache(config, store))
    methods = ["GET", "HEAD"]
    first: list[BaseRoute] = [Route(path, page, methods=methods)
                              for path in ("/feeds/{rest:path}", "/sitemaps/{rest:path}")]
    return first, [
        Route("/", functools.partial(home, config), methods=methods),
        *(Route(path, page, methods=methods)
          for path in ("/{lang:str}", "/{lang:str}/", "/{lang:str}/{slug:str}",
                       "/{lang:str}/{slug:str}/", "/{lang:str}/{slug:str}/{entry:str}",
                       "/{lang:str}/{slug:str}/{entry:str}/")),
    ]
