"""The web app (Starlette): feeds with conditional GET, series pages, the subscribe flow.

``create_app`` composes the routes of the modules in this package; starlette is imported
only inside this package. Every absolute link is built from ``config.public_url``, never
from the request's Host header.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from seriesfeed.config import Config
from seriesfeed.errors import StoreError
from seriesfeed.store import Store
from seriesfeed.store import jobs as jq
from seriesfeed.web.security import SecurityHeaders


def create_app(config: Config, store: Store) -> Starlette:
    from seriesfeed.web import feeds, localized, subscribe

    def healthz(request: Request) -> JSONResponse:
        try:
            with store.read() as conn:
                runs = jq.last_runs(conn)
                outbox = jq.outbox_counts(conn)
                last_error = jq.outbox_last_error(conn)
                subscribers = jq.subscriber_counts(conn)
        except StoreError as exc:
            return JSONResponse({"status": "error", "store": str(exc)}, status_code=503)
        jobs = {name: {"ok": run.ok, "started_at": run.started_at.isoformat(),
                       "summary": run.summary} for name, run in runs.items()}
        degraded = bool(outbox.get("retry")) and last_error is not None
        return JSONResponse({"status": "degraded" if degraded else "ok", "store": "ok",
                             "outbox": outbox, "last_delivery_error": last_error,
                             "subscribers": subscribers, "jobs": jobs})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *subscribe.routes(config, store),
        *feeds.routes(config, store),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers=localized.exception_handlers(config))  # type: ignore[arg-type]
    app.state.config = config
    app.state.store = store
    return app
