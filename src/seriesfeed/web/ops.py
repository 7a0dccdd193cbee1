"""The operator's endpoints: /healthz (up, degraded or down, and why) and /metrics
(Prometheus, behind ``[metrics] token``), and the middleware counting feed requests."""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seriesfeed import metrics, operations
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError
from seriesfeed.store import Store


def has_token(config: Config, request: Request) -> bool:
    """``Authorization: Bearer <[metrics] token>``, compared in constant time."""
    token = config.metrics.token
    if not token:
        return False
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode("utf-8"), token.encode("utf-8"))


def _report(config: Config, store: Store, figures: bool = True) -> dict[str, Any]:
    from seriesfeed.daemon import status_report

    return status_report(config, store, figures=figures)


ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def endpoints(config: Config, store: Store) -> tuple[Any, Any]:
    def public(reason: str) -> str:
        """What /healthz may show of a message: no store path or URL, and no subscriber's
        address (relays quote the recipient: '550 5.1.1 <ann@example.org>')."""
        return ADDRESS.sub("<address>", reason.replace(store.describe(), "the store"))

    def gather() -> tuple[dict[str, Any], dict[str, str]]:
        from seriesfeed.sources import failing_sources

        return _report(config, store, False), failing_sources(store, config)

    async def healthz(request: Request) -> Response:
        """``up`` only when the store answered and nothing failed recently; ``degraded``
        with the reasons (deliveries retrying, a job that failed, a failing source, a store
        error met by a request or job in the last minute); ``down`` (503) when the store is
        unreachable or damaged."""
        try:
            report, failing = await asyncio.to_thread(gather)
        except SeriesfeedError as exc:
            # the store is unreachable: nothing else can be judged
            return JSONResponse({"status": "down", "reasons": [f"store: {public(str(exc))}"]},
                                status_code=503)
        state, reasons = operations.health(report)
        recent = store.trouble.recent()
        if recent is not None:
            reasons.append(f"store: {public(recent[0])}")
        # a failing source is "degraded", never "down": what is stored is still served
        reasons += [f"source {name} failing: {public(error)}"
                    for name, error in sorted(failing.items())]
        down = recent is not None and recent[1]
        state = "down" if down else "degraded" if reasons else state
        body: dict[str, Any] = {"status": state, "reasons": reasons}
        if has_token(config, request):
            body.update(outbox=report["outbox"], subscribers=report["subscribers"],
                        last_delivery_error=report["last_error"])
        return JSONResponse(body, status_code=503 if down else 200)

    async def metrics_endpoint(request: Request) -> Response:
        if not config.metrics.enabled:
            return PlainTextResponse("Not Found", status_code=404)
        if not has_token(config, request):
            return PlainTextResponse("a bearer token is needed", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        try:
            report = await asyncio.to_thread(_report, config, store)
        except SeriesfeedError as exc:
            return PlainTextResponse(f"store unreachable: {exc}", status_code=503)
        return Response(metrics.exposition(report), media_type=metrics.CONTENT_TYPE)

    return healthz, metrics_endpoint


def routes(config: Config, store: Store) -> list[Route]:
    healthz, metrics_endpoint = endpoints(config, store)
    return [Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_endpoint, methods=["GET"])]


def metrics_app(config: Config, store: Store) -> Starlette:
    """/metrics alone, for ``[metrics] listen`` (a scraper on a private network)."""
    _, metrics_endpoint = endpoints(config, store)
    return Starlette(routes=[Route("/metrics", metrics_endpoint, methods=["GET"])])


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
