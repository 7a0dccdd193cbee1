"""The web app (Starlette): feeds with conditional GET, series pages, the subscribe flow.

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

import re
import weakref

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from seriesfeed.config import Config
from seriesfeed.errors import StoreError
from seriesfeed.store import Store
from seriesfeed.store import jobs as jq
from seriesfeed.web.busy import busy_page, visitor_language
from seriesfeed.web.security import SecurityHeaders

ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def create_app(config: Config, store: Store) -> Starlette:
    from seriesfeed.sources import failing_sources
    from seriesfeed.web import feeds, subscribe

    store = store.with_busy_timeout(config.web.store_timeout)

    def public(reason: str) -> str:
        """What /healthz may show of a message: no store path or URL, and no subscriber's
        address (relays quote the recipient: '550 5.1.1 <ann@example.org>')."""
        return ADDRESS.sub("<address>", reason.replace(store.describe(), "the store"))

    def healthz(request: Request) -> JSONResponse:
        """"ok" only when the store answered and nothing failed recently: a store error met
        by any request or job in the last minute, or a job whose last run failed, is
        reported with its reason ("error" with 503 when the store is damaged or unreadable)."""
        try:
            with store.read() as conn:
                runs = jq.last_runs(conn)
                outbox = jq.outbox_counts(conn)
                last_error = jq.outbox_last_error(conn)
                subscribers = jq.subscriber_counts(conn)
            failing = failing_sources(store, config)
        except StoreError as exc:
            return JSONResponse({"status": "error", "store": public(str(exc)),
                                 "problems": [f"store: {public(str(exc))}"]}, status_code=503)
        jobs = {name: {"ok": run.ok, "started_at": run.started_at.isoformat(),
                       "summary": public(run.summary) if run.summary else run.summary}
                for name, run in runs.items()}
        problems: list[str] = []
        recent = store.trouble.recent()
        if recent is not None:
            problems.append(f"store: {public(recent[0])}")
        problems += [f"job {name} failed: {public(run.summary or '')}"
                     for name, run in sorted(runs.items()) if run.ok is False]
        # a failing source is "degraded", never "down": what is stored is still served
        problems += [f"source {name} failing: {public(error)}"
                     for name, error in sorted(failing.items())]
        degraded = (bool(outbox.get("retry")) and last_error is not None) or bool(problems)
        down = recent is not None and recent[1]
        return JSONResponse({"status": "error" if down else "degraded" if degraded else "ok",
                             "store": "damaged" if down else "ok", "problems": problems,
                             "outbox": outbox,
                             "last_delivery_error": public(last_error) if last_error else None,
                             "subscribers": subscribers, "jobs": jobs, "sources": failing},
                            status_code=503 if down else 200)

    def store_failed(request: Request, exc: Exception) -> Response:
        # feeds and pages: whatever the store said stays in the log, never in the page
        return busy_page(config, visitor_language(config, request), str(exc))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *subscribe.routes(config, store),
        *feeds.routes(config, store),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={StoreError: store_failed})
    app.state.config = config
    app.state.store = store
    # the web's own engine: serve_until closes it; an app dropped without serving (tests,
    # embedders) closes it when collected rather than keeping its connections
    weakref.finalize(app, store.close)
    return app
