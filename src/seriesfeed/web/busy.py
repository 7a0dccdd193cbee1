"""The answer when the store cannot serve a request (busy, locked, unreachable, damaged):
a 503 page with ``Retry-After`` in the visitor's language, never the store's own message
(it names files and hosts). What went wrong is logged; the store keeps the newest failure
for ``/healthz`` (``Store.trouble``)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from seriesfeed import i18n
from seriesfeed.config import Config
from seriesfeed.templating import render, templates_dir

log = logging.getLogger("seriesfeed.web")
RETRY_AFTER_S = 10


def visitor_language(config: Config, request: Request) -> str:
    """``?lang=``, else the path's first segment (/es/…, /feeds/es/…), else the first
    configured language in Accept-Language, else the site's default."""
    candidates = [request.query_params.get("lang", "")]
    parts = [p for p in request.url.path.split("/") if p]
    candidates += parts[:2]
    for item in request.headers.get("accept-language", "").split(","):
        tag = item.split(";")[0].strip().lower()
        candidates += [tag, tag.split("-")[0]]
    return next((c for c in candidates if c in config.languages),
                config.site.default_language)


def busy_page(config: Config, lang: str, reason: str = "") -> Response:
    if reason:
        log.warning("store unavailable for a request: %s", reason)
    lang = lang if lang in config.languages else config.site.default_language
    _ = i18n.translator(lang)
    body = render(templates_dir(config.resolve("templates")), "web/page.html.j2", {
        "_": _, "lang": lang, "site": config.site, "public_url": config.public_url,
        "languages": config.languages, "form": None,
        "heading": _("Something is not right"),
        "paragraphs": [_("We cannot answer right now; please try again in a minute.")]})
    return HTMLResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
