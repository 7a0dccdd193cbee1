"""The answer when the store cannot serve a request (busy, locked, unreachable, damaged):
a 503 page with ``Retry-After`` in the visitor's language, never the store's own message
(it names files and hosts). What went wrong is logged; the store keeps the newest failure
for ``/healthz`` (``Store.trouble``)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from seriesfeed.config import Config
from seriesfeed.web.localized import error_page, language_of

__all__ = ["RETRY_AFTER_S", "busy_page", "visitor_language"]

log = logging.getLogger("seriesfeed.web")
RETRY_AFTER_S = 10


def visitor_language(config: Config, request: Request) -> str:
    """The request's language, as the edge negotiated it (``localized.reader_of``)."""
    return language_of(config, request)


def busy_page(config: Config, lang: str, reason: str = "") -> Response:
    if reason:
        log.warning("store unavailable for a request: %s", reason)
    return error_page(config, None, 503, language=lang,
                      headers={"Retry-After": str(RETRY_AFTER_S)})
