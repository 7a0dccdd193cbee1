"""The operator's console under ``/admin/`` (``[admin] enabled``): a shell over the same
verbs the CLI calls, behind one account's session (``actions.console``).

Every route but the login page goes through ``base.guarded``: no session, no answer but a
redirect to the login page (or 403 for a POST). Every answer under /admin carries
``Cache-Control: no-store`` and ``X-Robots-Tag: noindex`` (``NoStore``). With
``[admin] listen`` the routes are served only by ``console_app`` on that address.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seriesfeed.actions import Store
from seriesfeed.config import Config
from seriesfeed.web.admin import auth, content, dashboard, mail, people
from seriesfeed.web.admin.base import Console, Handler, guarded

__all__ = ["NoStore", "console_app", "routes"]

GET, POST = ["GET", "HEAD"], ["POST"]


def routes(config: Config, store: Store) -> list[BaseRoute]:
    console = Console(config, store)

    def page(path: str, handler: Handler, methods: list[str] = GET) -> Route:
        # a POST-only action still answers GET itself (login first, then 405), so no
        # public route further down ever sees an /admin path
        return Route(path, guarded(console, handler, shows="GET" in methods,
                                   takes="POST" in methods), methods=[*GET, *POST])

    async def to_console(_: object) -> Response:
        return RedirectResponse("/admin/", status_code=308)

    async def login(request: object) -> Response:
        return await auth.login(console, request)  # type: ignore[arg-type]

    return [
        Route("/admin", to_console, methods=GET),
        Route("/admin/login", login, methods=[*GET, *POST]),
        page("/admin/logout", auth.logout, POST),
        page("/admin/", dashboard.dashboard),
        page("/admin/outbox", mail.outbox),
        page("/admin/outbox/retry", mail.outbox_retry, POST),
        page("/admin/digests", mail.digests),
        page("/admin/digests/{id:int}", mail.digest),
        page("/admin/digests/{id:int}/retry", mail.digest_retry, POST),
        page("/admin/subscribers", people.subscribers),
        page("/admin/subscribers/show", people.subscriber),
        page("/admin/subscribers/erase", people.subscriber_erase, [*GET, *POST]),
        page("/admin/subscribers/status", people.subscriber_status, POST),
        page("/admin/subscribers/unsuppress", people.subscriber_unsuppress, POST),
        page("/admin/entries", content.entries),
        page("/admin/entries/edit", content.entry_edit, [*GET, *POST]),
        page("/admin/entries/link", content.entry_link, POST),
        page("/admin/series", content.series),
        page("/admin/series/text", content.series_text, POST),
        page("/admin/sources", content.sources),
        page("/admin/sources/poll", content.source_poll, POST),
        page("/admin/sources/{name:str}", content.source_history),
        page("/admin/preview", mail.preview),
        page("/admin/preview/html", mail.preview_html),
        page("/admin/preview/test", mail.test_send, POST),
        page("/admin/audit", people.audit_log),
    ]


class NoStore:
    """Console answers are never cached (a shared cache, the browser's back button) nor
    indexed, whatever produced them (a page, a redirect, an error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == "/admin" or path.startswith("/admin/")):
            await self.app(scope, receive, send)
            return

        async def headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() != b"cache-control"]
                message["headers"] = [*kept, (b"cache-control", b"no-store"),
                                      (b"x-robots-tag", b"noindex, nofollow")]
            await send(message)

        await self.app(scope, receive, headers)


def console_app(config: Config, store: Store, middleware: list[Middleware],
                handlers: dict[Any, Any]) -> Starlette:
    """The console alone, for ``[admin] listen``."""
    return Starlette(routes=routes(config, store),
                     middleware=[*middleware, Middleware(NoStore)],
                     exception_handlers=handlers)
