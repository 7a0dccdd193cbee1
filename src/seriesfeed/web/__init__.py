"""The web app (Starlette): feeds with conditional GET, series pages, the subscribe flow.

``create_app`` composes the routes of the modules in this package; starlette is imported
only inside this package. Every absolute link is built from ``config.public_url``, never
from the request's Host header.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from seriesfeed.config import Config
from seriesfeed.store import Store
from seriesfeed.web.security import SecurityHeaders


def create_app(config: Config, store: Store) -> Starlette:
    from seriesfeed.web import feeds, ops, subscribe

    routes: list[BaseRoute] = [
        *ops.routes(config, store),  # /healthz and /metrics (issue 16)
        *subscribe.routes(config, store),
        *feeds.routes(config, store),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders),
                                                     Middleware(ops.FeedCounter)])
    app.state.config = config
    app.state.store = store
    return app
