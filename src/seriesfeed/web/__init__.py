"""The web app (Starlette): feeds with conditional GET, series pages, the subscribe flow,
and the operator's /healthz and /metrics.

``create_app`` composes the routes of the modules in this package; starlette is imported
only inside this package. Every absolute link is built from ``config.public_url``, never
from the request's Host header.

The app reads and writes through its own Store on the same database with a short lock
wait (``[web] store_timeout``): a visitor is answered 503 + Retry-After in seconds rather
than held for SQLite's 30 s. Sync endpoints run in Starlette's thread pool and the async
ones hand every store call to a worker thread, so the event loop (which also sends mail
and runs the jobs in the daemon) never waits on the store.
"""

from __future__ import annotations

import weakref

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from seriesfeed.actions import Store
from seriesfeed.config import Config
from seriesfeed.errors import StoreError
from seriesfeed.web.busy import busy_page, visitor_language
from seriesfeed.web.security import SecurityHeaders

__all__ = ["create_app", "create_console_app"]


def create_app(config: Config, store: Store) -> Starlette:
    from seriesfeed.web import admin, feeds, localized, ops, subscribe

    store = store.with_busy_timeout(config.web.store_timeout)

    def store_failed(request: Request, exc: Exception) -> Response:
        # feeds and pages: whatever the store said stays in the log, never in the page
        return busy_page(config, visitor_language(config, request), str(exc))

    # the console: here under /admin/, unless [admin] listen serves it on its own address
    console = config.admin.enabled and not config.admin.listen
    feed_routes, page_routes = feeds.routes(config, store)
    routes: list[BaseRoute] = [
        *feed_routes,  # /feeds/… and /sitemaps/…: the most frequent requests, tried first
        # before the pages' /{lang}/{slug}/… routes, which would take /admin/… for a page
        *(admin.routes(config, store) if console else []),
        *ops.routes(config, store),  # /healthz and /metrics
        # before the pages' /{lang}/{slug}/… routes: /{lang}/manage/, /{lang}/digests/
        *subscribe.routes(config, store),
        *page_routes,
    ]
    handlers = {**localized.exception_handlers(config), StoreError: store_failed}
    # the language is decided per request on first need (localized.reader_of)
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders),
                                               *([Middleware(admin.NoStore)] if console
                                                 else []),
                                               Middleware(ops.FeedCounter)],
                    exception_handlers=handlers)  # type: ignore[arg-type]
    app.state.config = config
    app.state.store = store
    # the web's own engine: serve_until closes it; an app dropped without serving (tests,
    # embedders) closes it when collected rather than keeping its connections
    weakref.finalize(app, store.close)
    return app


def create_console_app(config: Config, store: Store) -> Starlette:
    """The console alone, for ``[admin] listen``: its own address, the same security
    headers and error pages as the public app."""
    from seriesfeed.web import admin, localized

    store = store.with_busy_timeout(config.web.store_timeout)
    # its pages and error pages decide the language on first need, as the public app's do
    app = admin.console_app(config, store, [Middleware(SecurityHeaders)],
                            localized.exception_handlers(config))
    app.state.config = config
    app.state.store = store
    weakref.finalize(app, store.close)
    return app
