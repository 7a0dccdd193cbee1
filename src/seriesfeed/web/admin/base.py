"""What every console endpoint shares: the page render in the operator's language, the
session guard, CSRF and Origin checks on every POST, the form reader, and the
POST/redirect/GET answer with its status message.

Console links and redirects are paths (``/admin/…``), never built from ``base_url``: with
``[admin] listen`` the console lives on another address than the public site.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from seriesfeed import actions, i18n
from seriesfeed.actions import Store
from seriesfeed.actions.console import Operator
from seriesfeed.config import Config
from seriesfeed.errors import StoreError, ValidationError, read_stored_int
from seriesfeed.i18n import N_
from seriesfeed.pages import render_page
from seriesfeed.web.admin.words import WORDS
from seriesfeed.web.localized import negotiated_language

__all__ = [
    "COOKIE",
    "DONE",
    "DONE_COOKIE",
    "LANG_COOKIE",
    "LOGIN_COOKIE",
    "MAX_BODY",
    "PAGE_SIZE",
    "Console",
    "Form",
    "Handler",
    "audit_action",
    "console_path",
    "guarded",
    "page_number",
    "pager",
]

COOKIE = "sf_admin"  # the signed session id
LOGIN_COOKIE = "sf_admin_login"  # the pre-session cookie the login form's CSRF is bound to
LANG_COOKIE = "sf_admin_lang"  # the operator's choice on the language switch
DONE_COOKIE = "sf_admin_done"  # what the last action did, for the page it redirects to
MAX_BODY = 64 * 1024
MAX_FIELDS = 200
PAGE_SIZE = 50

P = ParamSpec("P")
T = TypeVar("T")
Form = dict[str, str]
Handler = Callable[["Console", Request, Operator, Form | None], Awaitable[Response]]

# the status line the page after an action shows (its code in the DONE_COOKIE the redirect
# sets, so no link from elsewhere can put words on a console page), translated when shown
DONE: dict[str, str] = {
    "retried": N_("Messages put back in the queue: {n}."),
    "retry-none": N_("Nothing to retry."),
    "erased": N_("The subscriber's data is erased; the address stays suppressed."),
    "status": N_("The subscriber's status is changed."),
    "unsuppressed": N_("The suppression is lifted."),
    "polled": N_("The source was polled."),
    "poll-failed": N_("The poll failed: see the source's last error."),
    "entry": N_("The entry is saved."),
    "linked": N_("The translation link is saved."),
    "series": N_("The series' texts are saved."),
    "test-sent": N_("A test copy was sent."),
    "failed": N_("That did not work: {error}"),
}


def _when(value: object) -> str:
    """A time as the verbs give it (ISO 8601 in the site's zone) to the minute: the
    offset and the seconds are the same on every line of a page, and noise."""
    if not value:
        return "—"
    text = str(value)
    return text[:16].replace("T", " ") if len(text) >= 16 and text[10] == "T" else text


@dataclass
class Console:
    config: Config
    store: Store

    @property
    def secure(self) -> bool:
        """Cookies are Secure when the console is on the public site and that is https.
        On ``[admin] listen`` the console is plain http on its own address (a loopback
        tunnel, or a private interface, as the README offers), and a browser drops a
        Secure cookie set by a plain-http page off loopback: the login could never
        succeed there."""
        return self.config.public_url.startswith("https://") and not self.config.admin.listen

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A verb in a worker thread: the event loop never waits on the store."""
        return await run_in_threadpool(fn, *args, **kwargs)

    def language(self, request: Request) -> str:
        """``?lang=`` (the switch), else the switch's cookie, else Accept-Language."""
        langs = self.config.languages
        for chosen in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
            if chosen in langs:
                return str(chosen)
        return negotiated_language(self.config, request)

    def messages(self, lang: str) -> i18n.Messages:
        return i18n.messages_for(self.config, lang)

    def client(self, request: Request) -> str | None:
        # uvicorn has already applied [web] forwarded_allow_ips to the peer address
        return request.client.host if request.client else None

    def page(self, request: Request, name: str, *, title: str,
             operator: Operator | None = None, status: int = 200,
             headers: dict[str, str] | None = None, **ctx: Any) -> HTMLResponse:
        lang = self.language(request)
        _ = self.messages(lang)
        said = dict(parse_qsl(request.cookies.get(DONE_COOKIE, "")))
        notice = None
        if said.get("done") in DONE:
            values = {k: said.get(k, "")[:500] for k in ("n", "error")}
            notice = _(DONE[said["done"]], **values)
        here = request.url.path
        switch = [(code, language.name, f"{here}?{urlencode({'lang': code})}")
                  for code, language in self.config.languages.items() if code != lang]
        body = render_page(self.config, lang, f"admin/{name}", {
            "title": title, "operator": operator, "notice": notice, "switch": switch,
            "csrf": actions.console.csrf_field(self.config, operator) if operator else "",
            "path": here,
            "word": lambda value: _(WORDS[value]) if value in WORDS else value,
            "when": _when, **ctx})
        response = HTMLResponse(body, status_code=status,
                                headers={"Content-Language": lang, **(headers or {})})
        if DONE_COOKIE in request.cookies:  # shown once
            response.delete_cookie(DONE_COOKIE, path="/admin")
        if request.query_params.get("lang") in self.config.languages:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/admin",
                                httponly=True, samesite="strict", secure=self.secure)
        return response

    def refuse(self, request: Request, status: int, message: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
        _ = self.messages(self.language(request))
        return self.page(request, "error.html.j2", title=_("Refused"), status=status,
                         message=message, headers=headers)

    def cross_site(self, request: Request) -> bool:
        """Like the public forms: a Sec-Fetch-Site other than same-origin, or an Origin
        that is neither the public site nor (with ``[admin] listen``) the console's own
        address."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return True
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return False
        public = "{0.scheme}://{0.netloc}".format(urlsplit(self.config.public_url)).lower()
        allowed = {public}
        if self.config.admin.listen:
            host = request.headers.get("host", "")
            allowed |= {f"http://{host}".lower(), f"https://{host}".lower()}
        return origin.rstrip("/").lower() not in allowed

    async def own_form(self, request: Request) -> Form | Response:
        """A POST's fields, when it comes from the console's own pages (else the 403)."""
        if self.cross_site(request):
            _ = self.messages(self.language(request))
            return self.refuse(request, 403, _("This form can only be sent from the "
                                               "console's own pages."))
        return await self.form(request)

    async def form(self, request: Request) -> Form | Response:
        """The POST's fields, bounded in size and count and in the time they take."""
        length = request.headers.get("content-length")
        _ = self.messages(self.language(request))
        too_big = self.refuse(request, 413, _("What was sent is larger than this form "
                                              "accepts."))
        try:
            if length is not None and read_stored_int(length, "Content-Length") > MAX_BODY:
                return too_big
        except ValidationError:
            return too_big
        body = b""
        try:
            async with asyncio.timeout(self.config.web.body_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY:
                        return too_big
        except (TimeoutError, ClientDisconnect):
            return Response("incomplete request", status_code=400)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=MAX_FIELDS)
        except (ValueError, UnicodeDecodeError):
            return self.refuse(request, 400, _("The form could not be read."))
        data: Form = {}
        for key, value in pairs:  # repeated fields (checkboxes of ids) join with commas
            data[key] = f"{data[key]},{value}" if key in data else value
        return data

    async def operator(self, request: Request) -> Operator | None:
        return await self.call(actions.console.operator_for, self.store, self.config,
                               request.cookies.get(COOKIE))

    def done(self, path: str, code: str, **values: object) -> RedirectResponse:
        """POST/redirect/GET: back to ``path``, whose page says what ``code`` means."""
        response = RedirectResponse(path, status_code=303)
        said = urlencode({"done": code, **{k: str(v)[:500] for k, v in values.items()}})
        response.set_cookie(DONE_COOKIE, said, max_age=60, path="/admin", httponly=True,
                            samesite="strict", secure=self.secure)
        return response


def guarded(console: Console, handler: Handler, *, shows: bool = True, takes: bool = False
            ) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint behind the session: no live session is a redirect to the login page
    (GET) or 403 (anything else); a POST must also come from our own pages and carry the
    session's CSRF field. ``shows``: the endpoint answers GET (a page); ``takes``: it
    answers POST (a form); the other method is a 405 once the session is checked. A store
    that cannot answer is a 503 with Retry-After."""
    async def run(request: Request) -> Response:
        try:
            operator = await console.operator(request)
            _ = console.messages(console.language(request))
            if operator is None:
                if request.method in ("GET", "HEAD"):
                    return RedirectResponse("/admin/login", status_code=303)
                return console.refuse(request, 403, _("Log in first."))
            if request.method == "POST" and not takes:
                return console.refuse(request, 405, _("This address only shows a page."),
                                      headers={"Allow": "GET, HEAD"})
            if request.method != "POST":
                if not shows:
                    return console.refuse(request, 405, _("This address only takes a form."),
                                          headers={"Allow": "POST"})
                return await handler(console, request, operator, None)
            data = await console.own_form(request)
            if isinstance(data, Response):
                return data
            if not actions.console.csrf_ok(console.config, operator, data.get("csrf", "")):
                return console.refuse(request, 403, _("This form has expired; reload the "
                                                      "page and try again."))
            return await handler(console, request, operator, data)
        except StoreError:
            _ = console.messages(console.language(request))
            return console.refuse(request, 503, _("The store is busy; try again in a few "
                                                  "seconds."), headers={"Retry-After": "10"})
    return run


def console_path(raw: str, default: str) -> str:
    """``raw`` if it is a path under /admin/ as a browser resolves it, else ``default``: a
    prefix check alone let ``/admin/../x`` (and ``%2e%2e``, which browsers resolve too)
    send the operator out of the console."""
    parts = urlsplit(raw)
    path = unquote(parts.path)
    segments = path.split("/")
    if (parts.scheme or parts.netloc or not path.startswith("/admin/") or "\\" in path
            or any(s in (".", "..") for s in segments) or not raw.isprintable()):
        return default
    return raw


def page_number(request: Request) -> int:
    """``?page=``; anything but a page number (a hand-made link) is the first page."""
    try:
        return min(read_stored_int(request.query_params.get("page", "1"), "page",
                                   minimum=1), 100_000)
    except ValidationError:
        return 1


def pager(request: Request, page: int, more: bool) -> dict[str, str | None]:
    """Links to the previous and next page, keeping the other query parameters."""
    kept = {k: v for k, v in request.query_params.items() if k != "page"}

    def link(n: int) -> str:
        return f"{request.url.path}?{urlencode({**kept, 'page': str(n)})}"
    return {"prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if more else None, "page": str(page)}


async def audit_action(console: Console, request: Request, operator: Operator, action: str,
                 target: str | None, detail: Any, ok: bool) -> None:
    await console.call(actions.console.record, console.store, account=operator.account,
                       session=operator.session, address=console.client(request),
                       action=action, target=target, detail=detail, ok=ok)
