"""The operator's endpoints: /healthz (up, degraded or down, and why) and /metrics
(Prometheus, behind ``[metrics] token``), and the middleware counting feed requests."""

from __future__ import annotations

import asyncio
import functools
import hmac
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seriesfeed import actions, metrics
from seriesfeed.actions import Store
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError

__all__ = ["FeedCounter", "has_token", "healthz", "metrics_app", "metrics_endpoint", "routes"]


def has_token(config: Config, request: Request) -> bool:
    """``Authorization: Bearer <[metrics] token>``, compared in constant time."""
    token = config.metrics.token
    if not token:
        return False
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode("utf-8"), token.encode("utf-8"))


async def healthz(config: Config, store: Store, request: Request) -> Response:
    """``up``, ``degraded`` with the reasons, or ``down`` (503): actions.health."""
    judged = await asyncio.to_thread(actions.health, config, store)
    body: dict[str, Any] = {"status": judged.state, "reasons": judged.reasons}
    if judged.report is not None and has_token(config, request):
        report = judged.report
        body.update(outbox=report["outbox"], subscribers=report["subscribers"],
                    last_delivery_error=report["last_error"])
        if "nodes" in report:  # several nodes (PostgreSQL); host names are not public
            body.update(leader=report["leader"], nodes=report["nodes"])
    return JSONResponse(body, status_code=503 if judged.down else 200)


async def metrics_endpoint(config: Config, store: Store, request: Request) -> Response:
    """The Prometheus exposition of ``actions.status_report``, behind the bearer token."""
    if not config.metrics.enabled:
        return PlainTextResponse("Not Found", status_code=404)
    if not has_token(config, request):
        return PlainTextResponse("a bearer token is needed", status_code=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    try:
        report = await asyncio.to_thread(actions.status_report, config, store)
    except SeriesfeedError as exc:
        return PlainTextResponse(f"store unreachable: {exc}", status_code=503)
    return Response(metrics.exposition(report), media_type=metrics.CONTENT_TYPE)


def _metrics_route(config: Config, store: Store) -> Route:
    return Route("/metrics", functools.partial(metrics_endpoint, config, store),
                 methods=["GET"])


def routes(config: Config, store: Store) -> list[Route]:
    return [Route("/healthz", functools.partial(healthz, config, store), methods=["GET", "HEAD"]),
            _metrics_route(config, store)]


def metrics_app(config: Config, store: Store) -> Starlette:
    """/metrics alone, for ``[metrics] listen`` (a scraper on a private network)."""
    return Starlette(routes=[_metrics_route(config, store)])


class FeedCounter:
    """Counts responses to feed requests (and the 304s among them) for /metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/feeds/"):
            await self.app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.record_feed_request(int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting)
