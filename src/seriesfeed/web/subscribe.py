"""The subscribe flow: form, confirmation, preferences and one-click unsubscribe.

GET never changes anything (mail scanners fetch every link): confirm, preferences and
unsubscribe links show a page whose button POSTs, with a CSRF token bound to the link. The
one exception to CSRF is RFC 8058's cookie-less ``List-Unsubscribe=One-Click`` POST, whose
link token is its authorisation. The subscribe form is also published as a static page, so
it carries no token: a POST from any other origin is refused by its Origin / Sec-Fetch-Site.
Only POST acts on a token link; GET and HEAD show the page, other methods get 405.

The store is called in a worker thread (the event loop never waits on SQLite's lock), and a
store that cannot answer gives a 503 page with Retry-After (``web.busy``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from seriesfeed import actions, i18n
from seriesfeed.actions import Store
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError, StoreError, ValidationError
from seriesfeed.models import Frequency, Start, Subscriber, SubscriberStatus
from seriesfeed.pages import render_page
from seriesfeed.web import localized
from seriesfeed.web.busy import busy_page, visitor_language

__all__ = [
    "MAX_BODY",
    "MAX_FIELDS",
    "AnswerPace",
    "Endpoint",
    "RateLimiter",
    "Site",
    "confirm",
    "preferences",
    "routes",
    "subscribe",
    "undo",
    "unsubscribe",
]

Endpoint = Callable[[Request], Awaitable[Response]]
MAX_BODY = 16 * 1024
MAX_FIELDS = 20
PER_MINUTE, PER_DAY = 5, 30


class RateLimiter:
    """Subscribe attempts per client address, in this process (bounded memory)."""

    def __init__(self, per_minute: int = PER_MINUTE, per_day: int = PER_DAY) -> None:
        self.per_minute, self.per_day = per_minute, per_day
        self.hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self.hits) > 100_000:
            self.hits.clear()
        hits = self.hits[client]
        while hits and now - hits[0] > 86_400:
            hits.popleft()
        recent = sum(1 for t in hits if now - t < 60)
        if recent >= self.per_minute or len(hits) >= self.per_day:
            return False
        hits.append(now)
        return True


class AnswerPace:
    """Holds every answer to a subscribe POST until the store write of a new address
    would have finished, so its timing says nothing about the address (S2). Only a new
    (or returning) address commits a row before the answer; on a disk whose fsync costs
    milliseconds that alone told a new address from a known one. The hold is 1.5 times
    a running average of those writes' own durations (at least ``floor``, at most
    ``ceiling``): known, suppressed and new addresses then leave at the same moment,
    unless one write is slower than usual, which moves the average for all that follow.
    Both the writes and the hold count from the moment the store's write lock was taken,
    not from the request's start: a wait for another writer's lock (the daemon's, an
    import's) is every status's alike, and counted in it hid nothing once it passed the
    ceiling, while it held every answer after it near the ceiling until many new
    addresses had come. In this process, like the rate limiter; each node learns its own
    disk."""

    def __init__(self, floor: float = 0.002, ceiling: float = 0.5, start: float = 0.02) -> None:
        self.floor, self.ceiling = floor, ceiling
        self.write_s = start

    def wrote(self, seconds: float) -> None:
        """A store write that a new address needed took ``seconds`` (from the moment it
        held the store's write lock to the end of its commit, as the hold counts)."""
        self.write_s += (seconds - self.write_s) / 8

    def due(self) -> float:
        return min(self.ceiling, max(self.floor, self.write_s * 1.5))

    async def hold(self, started: float) -> None:
        left = started + self.due() - time.monotonic()
        if left > 0:
            await asyncio.sleep(left)


@dataclass
class Site:
    """The request context every subscribe endpoint gets: the app's config and store, the
    rate limiter, and the page, error, CSRF and form helpers. Built once per app."""

    config: Config
    store: Store
    limiter: RateLimiter = field(default_factory=RateLimiter)
    pace: AnswerPace = field(default_factory=AnswerPace)

    @property
    def own_origin(self) -> str:
        return "{0.scheme}://{0.netloc}".format(urlsplit(self.config.public_url))

    def page(self, lang: str, here: str, status: int = 200, **ctx: object) -> HTMLResponse:
        """The one render of a subscription page in ``lang``. ``here`` is the page's own
        address (from ``public_url``): the language switch links to it in every other
        configured language."""
        config = self.config
        lang = lang if lang in config.languages else config.site.default_language
        switch = [(code, language.name, f"{here}?lang={code}")
                  for code, language in config.languages.items() if code != lang]
        body = render_page(config, lang, "page.html.j2", {
            "form": None, "paragraphs": [], "about": None, "links": [], "switch": switch,
            **ctx})
        return HTMLResponse(body, status_code=status, headers={"Content-Language": lang})

    def shown_language(self, request: Request, sub: Subscriber) -> tuple[str, str]:
        """A token page's language (the subscriber's, unless the request's ``?lang=``
        chose another on the language switch) and the query that keeps that choice on
        the page's own form."""
        chosen = localized.reader_of(self.config, request).chosen
        if chosen is not None and chosen != sub.language:
            return chosen, f"?lang={chosen}"
        return sub.language, ""

    def onward(self, lang: str, sub: Subscriber) -> list[tuple[str, str]]:
        """Where a reader goes from a page that has nothing left to do: the series and
        their preferences."""
        _ = i18n.messages_for(self.config, lang)
        return [(_("See the series in {language}",
                   language=i18n.language_name(lang, self.locale(lang))),
                 f"{self.config.public_url}/{lang}/"),
                (_("Change your preferences"),
                 actions.subscribers.preferences_url(self.config, sub))]

    def locale(self, lang: str) -> str:
        found = self.config.languages.get(lang)
        return (found.locale if found else None) or lang

    def error(self, lang: str, status: int, message: str | None = None) -> HTMLResponse:
        """The status's page in ``lang``; ``message`` (translated) explains it."""
        return localized.error_page(self.config, None, status, language=lang, message=message)

    def token_error(self, request: Request) -> HTMLResponse:
        # a bad token names no subscriber: the reader's language comes from the request
        return localized.error_page(self.config, request, 400)

    async def about(self, lang: str, address: str, followed: tuple[str, ...],
                    local_part: bool = True) -> dict[str, object]:
        every = await run_in_threadpool(actions.list_all_series, self.store)
        return localized.about(self.config, lang, address, followed, every, local_part=local_part)

    async def subscriber(self, request: Request, purpose: actions.subscribers.Purpose,
                         token: str) -> Subscriber | HTMLResponse:
        """Whom a link's token names, or the bad-link page in the reader's language."""
        try:
            return await run_in_threadpool(actions.subscribers.subscriber_for, self.store,
                                           self.config, purpose, token)
        except ValidationError:
            return self.token_error(request)

    async def token_form(self, request: Request, lang: str,
                         token: str) -> dict[str, str] | Response:
        """A token page's POST: from our own origin, a form of bounded size, and the CSRF
        field bound to that link; else the page that says which was wrong."""
        _ = i18n.messages_for(self.config, lang)
        if self.cross_site(request):
            return self.error(lang, 403, _("This form can only be sent from our own pages."))
        data = await self.form_data(request)
        if isinstance(data, Response):
            return data
        if not self.csrf_ok(token, data.get("csrf", "")):
            return self.error(lang, 403, _("This form has expired; open the link again."))
        return data

    def csrf_for(self, link_token: str) -> str:
        """The CSRF field for the page a link opened."""
        return actions.subscribers.csrf_field(self.config, link_token)

    def csrf_ok(self, link_token: str, given: str) -> bool:
        """Bound to that link, compared in constant time (the verb checks)."""
        return actions.subscribers.csrf_valid(self.config, link_token, given)

    async def form_data(self, request: Request) -> dict[str, str] | Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return localized.error_page(self.config, request, 413)
        body = b""
        try:  # a body that trickles in holds a connection: [web] body_timeout
            async with asyncio.timeout(self.config.web.body_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY:
                        return localized.error_page(self.config, request, 413)
        except TimeoutError:
            return Response("request timeout: the form took too long to arrive",
                            status_code=408, headers={"Connection": "close"})
        except ClientDisconnect:  # gone mid-body: nobody to answer, nothing to log
            return Response("incomplete request", status_code=400)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=MAX_FIELDS)
        except (ValueError, UnicodeDecodeError):
            return localized.error_page(self.config, request, 400)
        data: dict[str, str] = {}
        for key, value in pairs:
            # the one repeated field, the series checkboxes: slugs never hold a comma
            data[key] = f"{data[key]},{value}" if key == "series" and key in data else value
        return data

    def cross_site(self, request: Request) -> bool:
        """Anything but our own origin: Sec-Fetch-Site other than same-origin (a same-site
        sibling host is not us), or a foreign Origin whatever Sec-Fetch-Site says. Origin
        "null" is what browsers send from a no-referrer page (ours are): then Sec-Fetch-Site
        decides. A client that sends neither (not a browser) is not refused here."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return True
        origin = request.headers.get("origin")
        if origin is not None and origin != "null":
            return origin.rstrip("/").lower() != self.own_origin.lower()
        return False


async def subscribe(site: Site, request: Request) -> Response:
    config, store = site.config, site.store
    here = f"{config.public_url}/subscribe"
    asked = request.query_params.get("lang")
    lang = localized.reader_of(config, request).language
    _ = i18n.messages_for(config, lang)
    if request.method != "POST":  # GET and HEAD show the form
        if asked is not None and asked not in config.languages:
            return localized.error_page(config, request, 404)
        start = await run_in_threadpool(actions.subscribers.default_start, store, config)
        return site.page(lang, here, heading=_("Get new articles by email"), form={
            "action": here, "subscribe": True,
            "hidden": {"language": lang, "series": ""}, "button": _("Subscribe"),
            "start": start.value})
    if site.cross_site(request):
        return site.error(lang, 403, _("This form can only be sent from our own pages."))
    data = await site.form_data(request)
    if isinstance(data, Response):
        return data
    if data.get("language", lang) != lang:  # the form's own language: the page it was on
        lang = data["language"]
        if lang not in config.languages:
            return localized.error_page(config, request, 400)
        _ = i18n.messages_for(config, lang)
    series = tuple(s for s in [data.get("series", "")] if s)
    confirmation: BackgroundTask | None = None
    started = time.monotonic()
    if not data.get("website"):  # the honeypot: only bots fill it in
        client = request.client.host if request.client else "unknown"
        if not site.limiter.allow(client):
            return site.error(lang, 429, _("Too many requests; please try again later."))
        try:
            result = await run_in_threadpool(
                actions.subscribers.add_subscriber,
                store, config, data.get("email", ""), name=data.get("name"), language=lang,
                frequency=data.get("frequency", "weekly"), source=f"form:/{lang}/",
                ip=client, series=series, start=data.get("start") or None)
        except StoreError as exc:
            return busy_page(config, lang, str(exc))
        except ValidationError as exc:
            return site.error(lang, 400, _("Please check the address and try again.")
                              if exc.field == "email" else None)
        except SeriesfeedError:
            return site.error(lang, 400)
        if result.wrote:
            site.pace.wrote(result.write_s)
        started = result.began  # the hold counts from the lock, as the writes do
        if result.send_confirmation and result.subscriber is not None:
            confirmation = BackgroundTask(actions.subscribers.send_confirmation, store,
                                          config, result.subscriber)
    # the same answer for new, pending, confirmed and suppressed addresses (and bots):
    # the block names what was typed, never what the store knows
    done = site.page(lang, here, heading=_("Check your inbox"), paragraphs=[
        _("If the address is right, a message with a confirmation link is on its way. "
          "Nothing will be sent until you confirm.")],
        about=await site.about(lang, data.get("email", "").strip()[:320], series, False))
    done.background = confirmation
    await site.pace.hold(started)
    return done


async def confirm(site: Site, request: Request) -> Response:
    config, store = site.config, site.store
    token = request.path_params["token"]
    sub = await site.subscriber(request, actions.subscribers.Purpose.CONFIRM, token)
    if isinstance(sub, Response):
        return sub
    lang, keep = site.shown_language(request, sub)
    here = f"{config.public_url}/confirm/{token}"
    _ = i18n.messages_for(config, lang)
    block = await site.about(lang, sub.email, sub.series)
    if request.method != "POST":  # GET and HEAD show the page; only POST acts
        if sub.status is SubscriberStatus.CONFIRMED:  # a link used before: nothing to do
            return site.page(lang, here, heading=_("You are subscribed"), about=block,
                             paragraphs=[_("You had already confirmed this subscription.")],
                             links=site.onward(lang, sub))
        if sub.status is not SubscriberStatus.PENDING:  # unsubscribed (or bounced) since
            return site.page(lang, here, heading=_("This link has nothing left to confirm"),
                             about=block, paragraphs=[
                _("This address is no longer subscribed. To get the emails again, "
                  "subscribe again.")],
                links=[(_("Subscribe again"), f"{config.public_url}/subscribe?lang={lang}")])
        return site.page(lang, here, heading=_("Confirm your subscription"), about=block,
                         form={"action": here + keep, "hidden": {"csrf": site.csrf_for(token)},
                               "button": _("Confirm my subscription"),
                               "start": sub.start.value})
    data = await site.token_form(request, lang, token)
    if isinstance(data, Response):
        return data
    try:
        sub = await run_in_threadpool(actions.subscribers.confirm, store, config, token,
                                      start=data.get("start") or None)
        said = await run_in_threadpool(actions.welcome.welcome_lines, store, config, sub)
    except StoreError as exc:
        return busy_page(config, lang, str(exc))
    except ValidationError:
        return site.error(lang, 400)
    if sub.start is not Start.FIRST:
        # only new parts: the next digest of their frequency is their first mail
        first = actions.jobs.next_digest(config, sub.frequency, now_utc())
        said = [_("New articles will reach you by email.")]
        if first is not None:
            when = i18n.format_moment(first, site.locale(lang), config.zone)
            said.append(_("Your first email is the next daily digest, on {when}, if new "
                          "articles have come out by then.", when=when)
                        if sub.frequency is Frequency.DAILY else
                        _("Your first email is the next weekly digest, on {when}, if new "
                          "articles have come out by then.", when=when))
    said += [_("A welcome message with these links is on its way."),
             _("You can unsubscribe at any time with the link in every message.")]
    done = site.page(lang, here, heading=_("You are subscribed"), paragraphs=said, links=[
        (_("Change your preferences"), actions.subscribers.preferences_url(config, sub)),
        (_("Unsubscribe"), actions.subscribers.unsubscribe_url(config, sub))], about=block)
    done.background = BackgroundTask(actions.subscribers.send_welcome, store, config)
    return done


async def unsubscribe(site: Site, request: Request) -> Response:
    config, store = site.config, site.store
    token = request.path_params["token"]
    here = f"{config.public_url}/unsubscribe/{token}"
    try:
        found = await run_in_threadpool(actions.subscribers.unsubscribe_target, store, config,
                                        token)
    except ValidationError:
        return site.token_error(request)
    if found is None:  # removed since: a genuine link, and nothing left to stop
        gone = localized.reader_of(config, request).language
        _ = i18n.messages_for(config, gone)
        return site.page(gone, here, heading=_("You are unsubscribed"),
                         paragraphs=[_("You will get no more emails from us.")])
    sub = found
    lang, keep = site.shown_language(request, sub)
    _ = i18n.messages_for(config, lang)
    block = await site.about(lang, sub.email, sub.series)
    if request.method != "POST":  # GET and HEAD show the page; only POST acts
        return site.page(lang, here, heading=_("Unsubscribe"), about=block, paragraphs=[
            _("Press the button to stop receiving these emails.")], form={
            "action": here + keep, "hidden": {"csrf": site.csrf_for(token)},
            "button": _("Unsubscribe")})
    data = await site.form_data(request)
    if isinstance(data, Response):
        return data
    one_click = data.get("List-Unsubscribe") == "One-Click"  # RFC 8058
    if not one_click and site.cross_site(request):  # one-click: no Origin, no cookie, no CSRF
        return site.error(lang, 403, _("This form can only be sent from our own pages."))
    if not one_click and not site.csrf_ok(token, data.get("csrf", "")):
        return site.error(lang, 403, _("This form has expired; open the link again."))
    try:
        await run_in_threadpool(actions.subscribers.unsubscribe, store, config, token)
        undo_link = await run_in_threadpool(actions.subscribers.undo_url, store, config, sub)
    except StoreError as exc:
        return busy_page(config, lang, str(exc))
    if undo_link is None:
        return site.page(lang, here, heading=_("You are unsubscribed"), about=block,
                         paragraphs=[_("You will get no more emails from us.")])
    return site.page(lang, here, heading=_("You are unsubscribed"), about=block, paragraphs=[
        _("You will get no more emails from us."),
        _("Unsubscribed by mistake? Undo it: your subscription comes back as it was, "
          "without a new confirmation.")], form=_undo_form(site, undo_link, keep, _))


def _undo_form(site: Site, undo_link: str, keep: str, _: i18n.Messages) -> dict[str, object]:
    """The undo is a button (a POST with its CSRF field), never a link a scanner could
    follow."""
    return {"action": undo_link + keep,
            "hidden": {"csrf": site.csrf_for(undo_link.rsplit("/", 1)[-1])},
            "button": _("Undo: keep me subscribed")}


async def undo(site: Site, request: Request) -> Response:
    """The undo of an unsubscribe: GET and HEAD show the button, only its POST acts."""
    config, store = site.config, site.store
    token = request.path_params["token"]
    here = f"{config.public_url}/undo/{token}"
    sub = await site.subscriber(request, actions.subscribers.Purpose.UNDO, token)
    if isinstance(sub, Response):
        return sub
    lang, keep = site.shown_language(request, sub)
    _ = i18n.messages_for(config, lang)
    block = await site.about(lang, sub.email, sub.series)
    if request.method != "POST":
        return site.page(lang, here, heading=_("Undo your unsubscribe"), about=block,
                         paragraphs=[_("Press the button to get these emails again, as "
                                       "before.")], form={
            "action": here + keep, "hidden": {"csrf": site.csrf_for(token)},
            "button": _("Undo: keep me subscribed")})
    data = await site.token_form(request, lang, token)
    if isinstance(data, Response):
        return data
    try:
        await run_in_threadpool(actions.subscribers.undo_unsubscribe, store, config, token)
    except StoreError as exc:
        return busy_page(config, lang, str(exc))
    except ValidationError:
        return site.error(lang, 400)
    return site.page(lang, here, heading=_("Your subscription is back"), paragraphs=[
        _("Nothing changed: the same language, frequency and series as before.")],
        links=[(_("Change your preferences"), actions.subscribers.preferences_url(config, sub)),
               (_("Unsubscribe"), actions.subscribers.unsubscribe_url(config, sub))],
        about=block)


async def preferences(site: Site, request: Request) -> Response:
    note: list[str] = []  # what the page says above the form ("saved")
    token = request.path_params["token"]
    sub = await site.subscriber(request, actions.subscribers.Purpose.PREFERENCES, token)
    if isinstance(sub, Response):
        return sub
    config, store = site.config, site.store
    here = f"{config.public_url}/preferences/{token}"
    lang, keep = site.shown_language(request, sub)
    _ = i18n.messages_for(config, lang)
    data: dict[str, str] | None = None
    if request.method == "POST":
        form = await site.token_form(request, lang, token)
        if isinstance(form, Response):
            return form
        data = form
    if sub.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
        return await _not_subscribed(site, sub, lang, here, keep)
    if data is not None:
        chosen = None  # the series boxes are shown (and sent) only when there are several
        if data.get("series_shown") == "1":
            chosen = tuple(s for s in data.get("series", "").split(",") if s)
        try:
            changed = await run_in_threadpool(
                actions.subscribers.update_preferences, store, config, token,
                language=data.get("language", sub.language),
                frequency=data.get("frequency", sub.frequency.value), series=chosen,
                start=data.get("start") or None)
        except StoreError as exc:
            return busy_page(config, lang, str(exc))
        except ValidationError as exc:
            if exc.field == "status":  # unsubscribed between this page and its answer
                return await _not_subscribed(site, sub, lang, here, keep)
            return site.error(lang, 400, _("Choose at least one series (or "
                                           "unsubscribe).") if exc.field == "series"
                              else None)
        sub = changed
        lang, keep = sub.language, ""  # the answer in the language just chosen
        _ = i18n.messages_for(config, lang)
        note = [_("Your preferences are saved.")]
    every = await run_in_threadpool(actions.list_all_series, store)
    boxes = [(s.slug, (s.text(lang) or next(iter(s.texts.values()))).title
              if s.texts else s.slug, not sub.series or s.slug in sub.series)
             for s in every] if len(every) > 1 else []
    hidden = {"csrf": site.csrf_for(token), **({"series_shown": "1"} if boxes else {})}
    return site.page(lang, here, heading=_("Your email preferences"), paragraphs=note,
                     about=localized.about(config, lang, sub.email, sub.series, every),
                     form={
        "action": here + keep,
        "hidden": hidden, "button": _("Save"),
        "preferences": {"language": sub.language, "frequency": sub.frequency.value,
                        "series": boxes}, "start": sub.start.value})


async def manage(site: Site, request: Request) -> Response:
    """Ask for a preferences link without a mail at hand: the same page, at once, for any
    address (the lookup and the mail happen after the answer, invariant S2)."""
    config = site.config
    lang = request.path_params["lang"]
    if lang not in config.languages:
        return localized.error_page(config, request, 404)
    _ = i18n.messages_for(config, lang)
    action = f"{config.public_url}/{lang}/manage/"
    if request.method != "POST":
        return site.page(lang, action, switch=_switch(config, lang, "manage"),
                         heading=_("Manage your subscription"), paragraphs=[
            _("Enter your address: we will send a link to your preferences to it.")],
            form={"action": action, "manage": True, "hidden": {}, "button": _("Send me the link")})
    if site.cross_site(request):
        return site.error(lang, 403, _("This form can only be sent from our own pages."))
    data = await site.form_data(request)
    if isinstance(data, Response):
        return data
    client = request.client.host if request.client else "unknown"
    if not site.limiter.allow(client):
        return site.error(lang, 429, _("Too many requests; please try again later."))
    done = site.page(lang, action, switch=_switch(config, lang, "manage"),
                     heading=_("Check your inbox"), paragraphs=[
        _("If that address is subscribed, a message with a link to your preferences is on "
          "its way.")])
    if not data.get("website"):  # the honeypot: only bots fill it in
        done.background = BackgroundTask(actions.subscribers.send_manage_link, site.store,
                                         config, data.get("email", "")[:320])
    return done


def _switch(config: Config, lang: str, page: str) -> list[tuple[str, str, str]]:
    """The language switch of a page whose language is in its path (/{lang}/manage/)."""
    return [(code, language.name, f"{config.public_url}/{code}/{page}/")
            for code, language in config.languages.items() if code != lang]


async def digest_view(site: Site, request: Request) -> Response:
    """A digest's public page (the "view in browser" link at the top of every digest):
    the digest's own HTML, naming no reader; kept out of search indexes."""
    config = site.config
    lang, token = request.path_params["lang"], request.path_params["token"]
    if request.method == "POST" or lang not in config.languages:
        return localized.error_page(config, request, 404)
    try:
        html = await run_in_threadpool(actions.digests.digest_page, site.store, config, lang,
                                       token)
    except ValidationError:
        return localized.error_page(config, request, 404)
    if html is None:
        return localized.error_page(config, request, 404)
    return HTMLResponse(html, headers={"Content-Language": lang, "X-Robots-Tag": "noindex",
                                       "Cache-Control": "private, max-age=300"})


async def digest_archive(site: Site, request: Request) -> Response:
    """The language's past digests, with ``[digests] archive = true``."""
    config = site.config
    lang = request.path_params["lang"]
    if request.method == "POST" or lang not in config.languages or not config.digests.archive:
        return localized.error_page(config, request, 404)
    links = await run_in_threadpool(actions.digests.digest_archive, site.store, config, lang)
    _ = i18n.messages_for(config, lang)
    return site.page(lang, f"{config.public_url}/{lang}/digests/",
                     switch=_switch(config, lang, "digests"), heading=_("Past digests"),
                     links=links,
                     paragraphs=[] if links else [_("No digest has been sent yet.")])


async def _not_subscribed(site: Site, sub: Subscriber, lang: str, here: str,
                          keep: str) -> Response:
    """Preferences of an address that left: nothing to set, and the way back (the undo of
    its unsubscribe when there is one, else the subscribe form)."""
    config = site.config
    _ = i18n.messages_for(config, lang)
    block = await site.about(lang, sub.email, sub.series)
    undo_link = await run_in_threadpool(actions.subscribers.undo_url, site.store, config, sub)
    said = [_("You get no emails from us, so there are no preferences to change.")]
    if undo_link is None:
        return site.page(lang, here, heading=_("You are unsubscribed"), about=block,
                         paragraphs=said, links=[(_("Subscribe again"),
                                                  f"{config.public_url}/subscribe?lang={lang}")])
    form = _undo_form(site, undo_link, keep, _)
    form["button"] = _("Subscribe me again")
    said.append(_("Subscribe again with the same language, frequency and series as before, "
                  "without a new confirmation:"))
    return site.page(lang, here, heading=_("You are unsubscribed"), about=block,
                     paragraphs=said, form=form)


def routes(config: Config, store: Store) -> list[BaseRoute]:
    site = Site(config, store)

    def bound(endpoint: Callable[[Site, Request], Awaitable[Response]]) -> Endpoint:
        """The endpoint over this app's Site. A store that cannot answer (locked past the
        web's short busy timeout, down, damaged) is a 503 in the visitor's language,
        whichever call met it."""
        async def run(request: Request) -> Response:
            try:
                return await endpoint(site, request)
            except StoreError as exc:
                return busy_page(config, visitor_language(config, request), str(exc))
        return run

    methods = ["GET", "HEAD", "POST"]  # anything else: 405 from the router
    return [
        Route("/subscribe", bound(subscribe), methods=methods),
        Route("/confirm/{token}", bound(confirm), methods=methods),
        Route("/unsubscribe/{token}", bound(unsubscribe), methods=methods),
        Route("/undo/{token}", bound(undo), methods=methods),
        Route("/preferences/{token}", bound(preferences), methods=methods),
        # ahead of the pages' /{lang}/{slug}/ routes
        Route("/{lang:str}/manage/", bound(manage), methods=methods),
        Route("/{lang:str}/digests/", bound(digest_archive), methods=["GET", "HEAD"]),
        Route("/{lang:str}/digests/{token:str}/", bound(digest_view),
              methods=["GET", "HEAD"]),
    ]
