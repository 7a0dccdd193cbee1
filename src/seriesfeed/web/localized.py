"""Pages in the reader's language: the language a request is in (decided once per request,
when first needed, by ``reader_of``, and kept on ``request.state``), error pages (400, 403,
404, 405, 413, 429, 500, 503) styled like the rest, and the "which address, which series"
block of the subscription pages.

A request's language is the first path segment when it names a configured language
(``/es/…``, ``/feeds/es/…``), else its ``?lang=`` when that names one (the language switch
of the form pages), else the best match for its ``Accept-Language`` (babel's negotiation),
else the site's default; a negotiated answer says ``Vary: Accept-Language``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from seriesfeed import i18n
from seriesfeed.actions.subscribers import shown_address
from seriesfeed.config import Config
from seriesfeed.i18n import N_
from seriesfeed.models import Series
from seriesfeed.pages import render_page, series_text
from seriesfeed.web.security import HEADERS

__all__ = [
    "ERRORS", "Reader", "about", "error_page", "exception_handlers",
    "language_of", "negotiated_language", "path_language", "reader_of",
]

log = logging.getLogger("seriesfeed.web")

# status -> (heading, explanation), English msgids translated when shown
ERRORS: dict[int, tuple[str, str]] = {
    400: (N_("This link or form did not work"),
          N_("The link is invalid or has expired, or the form was incomplete. Open the link "
             "from the latest message again, or start over from the series page.")),
    403: (N_("This form cannot be sent from here"),
          N_("This form can only be sent from our own pages.")),
    404: (N_("Page not found"), N_("There is no page or feed at this address.")),
    405: (N_("Not allowed"), N_("This address does not accept that kind of request.")),
    413: (N_("Too much data"), N_("What was sent is larger than this form accepts.")),
    429: (N_("Too many requests"), N_("Too many requests; please try again later.")),
    500: (N_("Something went wrong on our side"),
          N_("The error has been logged. Please try again in a few minutes.")),
    503: (N_("Busy right now"), N_("Please try again in a few seconds.")),
}


def path_language(config: Config, request: Request) -> str | None:
    parts = [p for p in request.url.path.split("/") if p]
    if parts and parts[0] == "feeds":
        parts = parts[1:]
    return parts[0] if parts and parts[0] in config.languages else None


def negotiated_language(config: Config, request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"), list(config.languages),
                          config.site.default_language)


@dataclass(frozen=True)
class Reader:
    """Whom a request is for, as far as its language goes: ``language`` to answer in, and
    ``chosen``, the language the request itself names (its path or ``?lang=``), None when
    ``language`` was negotiated from ``Accept-Language`` (the answer then varies on it)."""

    language: str
    chosen: str | None

    @property
    def negotiated(self) -> bool:
        return self.chosen is None


def _read(config: Config, request: Request) -> Reader:
    asked = request.query_params.get("lang")
    chosen = path_language(config, request) or (asked if asked in config.languages else None)
    return Reader(chosen or negotiated_language(config, request), chosen)


def reader_of(config: Config, request: Request) -> Reader:
    """The request's Reader, decided on first need and kept on ``request.state`` (shared by
    every ``Request`` made from the same scope), so the endpoints, the error pages and the
    busy page all read one decision. Not a middleware: a feed answered from memory never
    needs it, and deciding it for every request cost a fifth of a 304."""
    found = getattr(request.state, "reader", None)
    if not isinstance(found, Reader):
        found = request.state.reader = _read(config, request)
    return found


def language_of(config: Config, request: Request) -> str:
    return reader_of(config, request).language


def error_page(config: Config, request: Request | None, status: int, *,
               language: str | None = None, message: str | None = None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """The error page for ``status`` in ``language`` (default: the request's language).
    ``message`` (already translated) replaces the status's explanation. Without a request,
    ``language`` must be given."""
    if language in config.languages:
        lang, vary = str(language), False
    elif request is None:
        lang, vary = config.site.default_language, False
    else:
        found = reader_of(config, request)
        lang, vary = found.language, found.negotiated
    m = i18n.messages_for(config, lang)
    heading, explanation = ERRORS.get(status, ERRORS[400 if status < 500 else 500])
    body = render_page(config, lang, "error.html.j2", {
        "heading": m(heading), "paragraphs": [message or m(explanation)], "status": status})
    out = {"Content-Language": lang, **(headers or {})}
    if vary:
        out["Vary"] = "Accept-Language"
    if request is not None and request.method == "HEAD":
        return HTMLResponse(b"", status_code=status, headers=out)
    return HTMLResponse(body, status_code=status, headers=out)


def exception_handlers(config: Config) -> dict[int | type[Exception], object]:
    """Starlette's own answers (no route, wrong method, an unexpected error) as pages."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        allow = (exc.headers or {}).get("Allow") if isinstance(exc, HTTPException) else None
        return error_page(config, request, status, headers={"Allow": allow} if allow else None)

    async def server_error(request: Request, exc: Exception) -> Response:
        # the traceback goes to the log, never to the reader
        log.error("error answering %s %s", request.method, request.url.path, exc_info=exc)
        # Starlette sends this answer outside every middleware, so it gets here what the
        # middleware would have added: the security headers, and (a console page's error
        # included) never cached nor indexed
        return error_page(config, request, 500, headers={
            **{k.decode(): v.decode() for k, v in HEADERS},
            "Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"})

    return {HTTPException: http_error, 404: http_error, 405: http_error, 500: server_error}


def about(config: Config, language: str, address: str, followed: tuple[str, ...],
          every: list[Series], *, local_part: bool = True) -> dict[str, object]:
    """Which address and series a subscription page is about, with links to the series;
    no series chosen means all of them (a single series is then named). The "check your
    inbox" page passes ``local_part=False``: it answers anyone who types an address, and
    must read the same whoever is (or is not) subscribed."""
    by_slug = {s.slug: s for s in every}
    chosen = [by_slug[slug] for slug in followed if slug in by_slug] or \
        (every if len(every) == 1 else [])
    return {"address": shown_address(address, local_part=local_part) if address else "",
            "series": [(series_text(config, s, language)[0],
                        f"{config.public_url}/{language}/{s.slug}/") for s in chosen]}
