"""A digest's public page (the "view in browser" link at the top of every digest) and,
with ``[digests] archive = true``, the list of past digests per language."""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from seriesfeed import actions, i18n
from seriesfeed.actions import Store
from seriesfeed.config import Config
from seriesfeed.errors import ValidationError
from seriesfeed.pages import render_page
from seriesfeed.web import localized

__all__ = ["routes"]

# the page names no reader, but it is reached by an unguessable link: kept out of indexes
PRIVATE = {"X-Robots-Tag": "noindex", "Cache-Control": "private, max-age=300"}


async def view(config: Config, store: Store, request: Request) -> Response:
    lang, token = request.path_params["lang"], request.path_params["token"]
    if lang not in config.languages:
        return localized.error_page(config, request, 404)
    try:
        html = await run_in_threadpool(actions.digests.digest_page, store, config, lang, token)
    except ValidationError:
        return localized.error_page(config, request, 404)
    if html is None:
        return localized.error_page(config, request, 404)
    return HTMLResponse(html, headers={"Content-Language": lang, **PRIVATE})


async def archive(config: Config, store: Store, request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang not in config.languages or not config.digests.archive:
        return localized.error_page(config, request, 404)
    links = await run_in_threadpool(actions.digests.digest_archive, store, config, lang)
    _ = i18n.messages_for(config, lang)
    body = render_page(config, lang, "page.html.j2", {
        "heading": _("Past digests"), "form": None, "about": None, "links": links,
        "paragraphs": [] if links else [_("No digest has been sent yet.")]})
    return HTMLResponse(body, headers={"Content-Language": lang})


def routes(config: Config, store: Store) -> list[BaseRoute]:
    methods = ["GET", "HEAD"]
    return [
        Route("/{lang:str}/digests/", functools.partial(archive, config, store),
              methods=methods),
        Route("/{lang:str}/digests/{token:str}/", functools.partial(view, config, store),
              methods=methods),
    ]
