"""The console's pages and actions: each GET reads through a verb, each POST calls one verb,
records one audit row and answers with a redirect (POST/redirect/GET) and a status line."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from seriesfeed import actions, i18n, svgcharts
from seriesfeed.actions import audit, subscriber_admin
from seriesfeed.actions.console import Operator
from seriesfeed.errors import SeriesfeedError
from seriesfeed.models import Frequency, OutboxState, SubscriberStatus
from seriesfeed.web.admin.base import PAGE_SIZE, Console, Form, Handler
from seriesfeed.web.admin.words import WORDS

__all__ = [
    "Handler",
    "audit_log",
    "dashboard",
    "digest",
    "digest_retry",
    "digests",
    "entries",
    "entry_edit",
    "entry_link",
    "outbox",
    "outbox_retry",
    "preview",
    "preview_html",
    "series",
    "series_text",
    "source_history",
    "source_poll",
    "sources",
    "subscriber",
    "subscriber_erase",
    "subscriber_status",
    "subscriber_unsuppress",
    "subscribers",
    "test_send",
]


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 100_000)) if raw.isdigit() else 1


def _pager(request: Request, page: int, more: bool) -> dict[str, str | None]:
    """Links to the previous and next page, keeping the other query parameters."""
    kept = {k: v for k, v in request.query_params.items() if k != "page"}

    def link(n: int) -> str:
        return f"{request.url.path}?{urlencode({**kept, 'page': str(n)})}"
    return {"prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if more else None, "page": str(page)}


async def _audit(console: Console, request: Request, operator: Operator, action: str,
                 target: str | None, detail: Any, ok: bool) -> None:
    await console.call(actions.console.record, console.store, account=operator.account,
                       session=operator.session, address=console.client(request),
                       action=action, target=target, detail=detail, ok=ok)


def _attention(health: dict[str, Any]) -> list[dict[str, str]]:
    """The health reasons, each with what it is about and where to act on it."""
    items = []
    for reason in health["reasons"]:
        if reason.startswith("source "):
            kind, href = "source", "/admin/sources"
        elif "retried" in reason:
            kind, href = "retry", "/admin/outbox?state=retry"
        elif reason.startswith("sending paused"):
            kind, href = "relay", "/admin/#relay"
        elif reason.startswith("job "):
            kind, href = "job", "/admin/#jobs"
        else:
            kind, href = "store", "/admin/#health"
        items.append({"kind": kind, "href": href, "reason": reason})
    return items


def _drawn(console: Console, lang: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart verbs' numbers as SVG with their titles, axis and series names in the
    operator's language; each keeps its numbers for the table beside it."""
    _ = console.messages(lang)
    config = console.config
    locale = config.languages[lang].locale if lang in config.languages else lang

    def names(code: str) -> str:
        return _word(_, code) if code not in config.languages else \
            i18n.language_name(code, locale)

    wanted: list[tuple[str, str, str, Any, bool]] = [
        ("chart-messages", _("Messages sent per day, by language"), _("Day"),
         found["messages"], True)]
    for code, chart in found["subscribers"].items():
        wanted.append((f"chart-subscribers-{code}", _("Subscribers in {language}, by status",
                                                     language=names(code)), _("Day"),
                       chart, False))
    wanted += [("chart-bounces", _("Hard bounces and complaints per week"),
                _("Week from"), found["bounces"], True),
               ("chart-polls", _("Source polls per day, by result"), _("Day"),
                found["polls"], True)]
    out = []
    for ident, title, axis, chart, stacked in wanted:
        labels = [i18n.format_date(d, locale, "d MMM") for d in chart.starts]
        series = [svgcharts.Series(names(key) if key else _("other"),
                                   [float(v) for v in values])
                  for key, values in chart.series.items()]
        drawn = svgcharts.Chart(ident, title, labels, series)
        out.append({"id": ident, "title": title, "axis": axis, "labels": labels,
                    "series": [{"name": s.name, "values": s.values} for s in series],
                    "empty": drawn.empty,
                    "svg": svgcharts.bars(drawn) if stacked else svgcharts.lines(drawn)})
    return out


def _word(_: Any, key: str) -> str:
    return str(_(WORDS[key])) if key in WORDS else key


async def dashboard(console: Console, request: Request, operator: Operator,
                    data: Form | None) -> Response:
    lang = console.language(request)
    _ = console.messages(lang)
    found = await console.call(actions.console.dashboard, console.config, console.store)
    report = found["report"]
    return console.page(request, "dashboard.html.j2", title=_("Dashboard"), operator=operator,
                        health=found["health"], report=report,
                        attention=_attention(found["health"]),
                        digests=found["digests"], sources=found["sources"],
                        charts=_drawn(console, lang, found["charts"]) if report else [])


async def outbox(console: Console, request: Request, operator: Operator,
                 data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    state = request.query_params.get("state") or None
    if state not in (None, *(s.value for s in OutboxState)):
        state = None
    page = _page_number(request)
    rows = await console.call(actions.ops.list_outbox, console.store, console.config,
                              state=state, limit=PAGE_SIZE + 1,
                              offset=(page - 1) * PAGE_SIZE, newest_first=True)
    return console.page(request, "outbox.html.j2", title=_("Outbox"), operator=operator,
                        rows=rows[:PAGE_SIZE], state=state,
                        states=[s.value for s in OutboxState],
                        pager=_pager(request, page, len(rows) > PAGE_SIZE))


def _ids(raw: str) -> list[int]:
    return [int(p) for p in raw.split(",") if p.strip().isdigit()][:1000]


async def outbox_retry(console: Console, request: Request, operator: Operator,
                       data: Form | None) -> Response:
    assert data is not None
    ids = _ids(data.get("id", ""))
    back = data.get("back", "/admin/outbox")
    back = back if back.startswith("/admin/") else "/admin/outbox"
    try:
        done = await console.call(actions.ops.retry_outbox, console.store, ids)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "outbox.retry", ",".join(map(str, ids)),
                     {"error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await _audit(console, request, operator, "outbox.retry", ",".join(map(str, ids)),
                 {"retried": done.queued}, True)
    return console.done(back, "retried" if done.queued else "retry-none", n=len(done.queued))


async def digests(console: Console, request: Request, operator: Operator,
                  data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    page = _page_number(request)
    every = list(reversed(await console.call(actions.ops.list_digests, console.store,
                                             console.config)))
    shown = every[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return console.page(request, "digests.html.j2", title=_("Digests"), operator=operator,
                        digests=shown, pager=_pager(request, page, len(every) > page * PAGE_SIZE))


async def digest(console: Console, request: Request, operator: Operator,
                 data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    number = int(request.path_params["id"])
    try:
        found = await console.call(actions.ops.show_digest, console.store, console.config,
                                   number)
    except SeriesfeedError:
        return console.refuse(request, 404, _("There is no digest {n}.", n=number))
    return console.page(request, "digest.html.j2", title=_("Digest {n}", n=number),
                        operator=operator, digest=found)


async def digest_retry(console: Console, request: Request, operator: Operator,
                       data: Form | None) -> Response:
    number = int(request.path_params["id"])
    back = f"/admin/digests/{number}"
    try:
        done = await console.call(actions.ops.retry_digest, console.store, number)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "digests.retry", str(number),
                     {"error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await _audit(console, request, operator, "digests.retry", str(number),
                 {"retried": done.queued, "skipped": done.skipped}, True)
    return console.done(back, "retried" if done.queued else "retry-none", n=len(done.queued))


async def subscribers(console: Console, request: Request, operator: Operator,
                      data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    q = request.query_params
    chosen = {k: (q.get(k) or "")[:200] for k in ("q", "status", "language", "frequency")}
    try:
        wanted = subscriber_admin.filters(
            search=chosen["q"], status=chosen["status"], language=chosen["language"],
            frequency=chosen["frequency"])
    except SeriesfeedError:  # a hand-made query: show everyone rather than an error
        wanted = subscriber_admin.filters()
    page = _page_number(request)
    found = await console.call(subscriber_admin.search_subscribers, console.store,
                               wanted, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return console.page(request, "subscribers.html.j2", title=_("Subscribers"),
                        operator=operator, rows=found.subscribers, total=found.total,
                        chosen=chosen, statuses=[s.value for s in SubscriberStatus],
                        frequencies=[f.value for f in Frequency],
                        pager=_pager(request, page, found.total > page * PAGE_SIZE))


async def subscriber(console: Console, request: Request, operator: Operator,
                     data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    email = request.query_params.get("email", "")[:320]
    try:
        found = await console.call(subscriber_admin.show_subscriber, console.store,
                                   console.config, email)
    except SeriesfeedError:
        return console.refuse(request, 404, _("There is no subscriber with that address."))
    return console.page(request, "subscriber.html.j2", title=found.email, operator=operator,
                        found=found, statuses=[s.value for s in SubscriberStatus])


def _actor(console: Console, request: Request, operator: Operator) -> audit.Actor:
    return audit.Actor(operator.account, operator.session, console.client(request))


async def subscriber_status(console: Console, request: Request, operator: Operator,
                            data: Form | None) -> Response:
    """The verb records its own audit row (with the change, in one transaction)."""
    assert data is not None
    email, status = data.get("email", "")[:320], data.get("status", "")
    back = f"/admin/subscribers/show?{urlencode({'email': email})}"
    try:
        await console.call(subscriber_admin.set_status, console.store, email, status,
                           actor=_actor(console, request, operator))
    except SeriesfeedError as exc:
        return console.done(back, "failed", error=str(exc))
    return console.done(back, "status")


async def subscriber_unsuppress(console: Console, request: Request, operator: Operator,
                                data: Form | None) -> Response:
    """The verb records its own audit row, with the required reason."""
    assert data is not None
    email, reason = data.get("email", "")[:320], data.get("reason", "")
    back = f"/admin/subscribers/show?{urlencode({'email': email})}"
    try:
        await console.call(subscriber_admin.unsuppress, console.store, email, reason,
                           actor=_actor(console, request, operator))
    except SeriesfeedError as exc:
        return console.done(back, "failed", error=str(exc))
    return console.done(back, "unsuppressed")


async def subscriber_erase(console: Console, request: Request, operator: Operator,
                           data: Form | None) -> Response:
    """GET: the confirmation step; POST (with ``confirm``): erase."""
    _ = console.messages(console.language(request))
    if data is None:
        email = request.query_params.get("email", "")[:320]
        return console.page(request, "erase.html.j2", title=_("Erase a subscriber"),
                            operator=operator, email=email)
    email = data.get("email", "")[:320]
    if data.get("confirm") != email:
        return console.done(f"/admin/subscribers/erase?{urlencode({'email': email})}",
                            "failed", error=_("type the address again to confirm"))
    try:
        await console.call(actions.subscribers.remove_subscriber, console.store, email)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "subscribers.remove", None,
                     {"error": str(exc)}, False)
        return console.done("/admin/subscribers", "failed", error=str(exc))
    # the audit keeps no copy of an erased address: that is the point of erasing it
    await _audit(console, request, operator, "subscribers.remove", None, None, True)
    return console.done("/admin/subscribers", "erased")


async def entries(console: Console, request: Request, operator: Operator,
                  data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    config = console.config
    every_series = await console.call(actions.list_all_series, console.store)
    slugs = [s.slug for s in every_series]
    lang = request.query_params.get("language") or None
    lang = lang if lang in config.languages else None
    slug = request.query_params.get("series") or None
    slug = slug if slug in slugs else None
    found = await console.call(actions.list_entries, console.store, lang, slug)
    page = _page_number(request)
    shown = found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return console.page(request, "entries.html.j2", title=_("Entries"), operator=operator,
                        entries=shown, series=slugs, language=lang or "", slug=slug or "",
                        pager=_pager(request, page, len(found) > page * PAGE_SIZE))


async def entry_edit(console: Console, request: Request, operator: Operator,
                     data: Form | None) -> Response:
    """GET: one entry's form (title, summary, part); POST: save what changed, through the
    verbs `entries set` calls (the part first: the store may refuse it)."""
    _ = console.messages(console.language(request))
    ref = (data or {}).get("entry") or request.query_params.get("entry", "")
    try:
        found = await console.call(actions.show_entry, console.store, ref[:2000])
    except SeriesfeedError:
        return console.refuse(request, 404, _("There is no such entry."))
    here = f"/admin/entries/edit?{urlencode({'entry': str(found.seq)})}"
    if data is None:
        link = found.link(console.config.public_url, True) if found.page_path else None
        return console.page(request, "entry.html.j2", title=_("Edit an entry"),
                            operator=operator, entry=found, page_link=link)
    raw = data.get("part", "").strip().lower()
    part: int | str = int(raw) if raw.isdigit() else (raw or "auto")
    title, summary = data.get("title"), data.get("summary")
    detail: dict[str, Any] = {}
    try:
        if part != (found.pinned or "auto"):
            if not isinstance(part, int) and part != "auto":
                raise SeriesfeedError(_("a part is a number, or empty for the date order"))
            await console.call(actions.set_entry, console.store, str(found.seq), part=part)
            detail["part"] = part
        texts = {k: v for k, v in (("title", title), ("summary", summary))
                 if v is not None and v.strip() != getattr(found, k)}
        if texts:
            await console.call(actions.entries.set_entry_texts, console.store,
                               console.config, str(found.seq), **texts)
            detail.update(texts)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "entries.set", found.id,
                     {**detail, "error": str(exc)}, False)
        return console.done(here, "failed", error=str(exc))
    await _audit(console, request, operator, "entries.set", found.id, detail, True)
    return console.done(here, "entry")


async def entry_link(console: Console, request: Request, operator: Operator,
                     data: Form | None) -> Response:
    assert data is not None
    original, translation = data.get("original", ""), data.get("translation", "")
    back = "/admin/entries"
    try:
        await console.call(actions.link_translations, console.store, original, translation)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "entries.link", original,
                     {"translation": translation, "error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await _audit(console, request, operator, "entries.link", original,
                 {"translation": translation}, True)
    return console.done(back, "linked")


async def series(console: Console, request: Request, operator: Operator,
                 data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    infos = await console.call(actions.list_series_info, console.store)
    return console.page(request, "series.html.j2", title=_("Series"), operator=operator,
                        infos=infos, languages=console.config.languages)


async def series_text(console: Console, request: Request, operator: Operator,
                      data: Form | None) -> Response:
    assert data is not None
    slug, lang = data.get("series", ""), data.get("language", "")
    texts = {k: data.get(k, "") for k in ("title", "description", "url")}
    try:
        await console.call(actions.set_series_text, console.store, console.config, slug, lang,
                           title=texts["title"] or None, description=texts["description"],
                           url=texts["url"])
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "series.set", slug,
                     {"language": lang, "error": str(exc)}, False)
        return console.done("/admin/series", "failed", error=str(exc))
    await _audit(console, request, operator, "series.set", slug, {"language": lang, **texts},
                 True)
    return console.done("/admin/series", "series")


async def sources(console: Console, request: Request, operator: Operator,
                  data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    found = await console.call(actions.sources.list_sources, console.store, console.config)
    return console.page(request, "sources.html.j2", title=_("Sources"), operator=operator,
                        sources=found)


async def source_poll(console: Console, request: Request, operator: Operator,
                      data: Form | None) -> Response:
    assert data is not None
    name = data.get("source", "")
    if name not in console.config.sources:
        return console.done("/admin/sources", "failed", error=name)
    try:  # the poll is async and calls the store in threads itself
        results = await actions.sources.poll_sources(console.store, console.config, [name],
                                                     force=True)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "sources.poll", name, {"error": str(exc)},
                     False)
        return console.done("/admin/sources", "failed", error=str(exc))
    ok = all(r.outcome in ("imported", "not-modified") for r in results)
    await _audit(console, request, operator, "sources.poll", name,
                 {"results": [str(r) for r in results]}, ok)
    return console.done("/admin/sources", "polled" if ok else "poll-failed")


async def source_history(console: Console, request: Request, operator: Operator,
                         data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    name = request.path_params["name"]
    page = _page_number(request)
    try:
        found = await console.call(actions.sources.source_history, console.store,
                                   console.config, name, limit=PAGE_SIZE,
                                   offset=(page - 1) * PAGE_SIZE)
    except SeriesfeedError:
        return console.refuse(request, 404, _("There is no such source."))
    return console.page(request, "source.html.j2", title=_("Source {name}", name=name),
                        operator=operator, history=found,
                        pager=_pager(request, page, found["total"] > page * PAGE_SIZE))


async def audit_log(console: Console, request: Request, operator: Operator,
                    data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    page = _page_number(request)
    action = (request.query_params.get("action") or "")[:64] or None
    rows = await console.call(audit.log, console.store, limit=PAGE_SIZE + 1,
                              offset=(page - 1) * PAGE_SIZE, action=action)
    return console.page(request, "audit.html.j2", title=_("Audit log"), operator=operator,
                        rows=[r.to_json(console.config.zone) for r in rows[:PAGE_SIZE]],
                        action=action or "",
                        pager=_pager(request, page, len(rows) > PAGE_SIZE))


def _preview_choice(console: Console, request: Request) -> tuple[str, Frequency]:
    config = console.config
    lang = request.query_params.get("language") or config.site.default_language
    lang = lang if lang in config.languages else config.site.default_language
    raw = request.query_params.get("frequency") or Frequency.WEEKLY.value
    frequency = Frequency(raw) if raw in {f.value for f in Frequency} else Frequency.WEEKLY
    return lang, frequency


async def preview(console: Console, request: Request, operator: Operator,
                  data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    lang, frequency = _preview_choice(console, request)
    shown = await console.call(actions.preview_digest, console.store, console.config, lang,
                               frequency)
    return console.page(request, "preview.html.j2", title=_("Digest preview"),
                        operator=operator, preview=shown, language=lang,
                        frequency=frequency.value,
                        html_link=f"/admin/preview/html?"
                                  f"{urlencode({'language': lang, 'frequency': frequency})}")


async def preview_html(console: Console, request: Request, operator: Operator,
                       data: Form | None) -> Response:
    """The digest's HTML as a mail client would show it."""
    _ = console.messages(console.language(request))
    lang, frequency = _preview_choice(console, request)
    shown = await console.call(actions.preview_digest, console.store, console.config, lang,
                               frequency)
    if shown is None:
        return console.refuse(request, 404, _("There is nothing to preview."))
    return HTMLResponse(shown.html, headers={"Content-Language": lang})


async def test_send(console: Console, request: Request, operator: Operator,
                    data: Form | None) -> Response:
    assert data is not None
    config = console.config
    lang = data.get("language", "")
    lang = lang if lang in config.languages else config.site.default_language
    raw = data.get("frequency", "weekly")
    frequency = Frequency(raw) if raw in {f.value for f in Frequency} else Frequency.WEEKLY
    back = f"/admin/preview?{urlencode({'language': lang, 'frequency': frequency.value})}"
    to = data.get("to", "")[:320]
    try:
        sent = await console.call(actions.digests.send_test_copy, console.store, config,
                                  language=lang, to=to, frequency=frequency)
    except SeriesfeedError as exc:
        await _audit(console, request, operator, "digest.test-send", to,
                     {"language": lang, "error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await _audit(console, request, operator, "digest.test-send", sent.address,
                 {"language": lang, "frequency": frequency.value,
                  "message_id": sent.message_id}, True)
    return console.done(back, "test-sent")
