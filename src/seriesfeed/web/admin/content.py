"""The console's content pages: entries (by series and language, edit texts and part,
link translations), series texts per language, and sources (poll now, history)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from seriesfeed import actions
from seriesfeed.actions.console import Operator
from seriesfeed.errors import SeriesfeedError, ValidationError, read_stored_int
from seriesfeed.web.admin.base import PAGE_SIZE, Console, Form, audit_action, page_number, pager

__all__ = [
    "entries",
    "entry_edit",
    "entry_link",
    "series",
    "series_text",
    "source_history",
    "source_poll",
    "sources",
]


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
    page = page_number(request)
    shown = found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return console.page(request, "entries.html.j2", title=_("Entries"), operator=operator,
                        entries=shown, series=slugs, language=lang or "", slug=slug or "",
                        pager=pager(request, page, len(found) > page * PAGE_SIZE))


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
    title, summary = data.get("title"), data.get("summary")
    detail: dict[str, Any] = {}
    try:
        part: int | str = "auto"
        if raw not in ("", "auto"):
            try:
                part = read_stored_int(raw, "part", minimum=1)
            except ValidationError:
                raise SeriesfeedError(_("a part is a number, or empty for the date "
                                        "order")) from None
        if part != (found.pinned or "auto"):
            await console.call(actions.set_entry, console.store, str(found.seq), part=part)
            detail["part"] = part
        # the form sends every field back: only what differs is an edit
        texts = actions.entries.changed_texts(found, title=title, summary=summary)
        if texts:
            await console.call(actions.entries.set_entry_texts, console.store,
                               console.config, str(found.seq), **texts)
            detail.update(texts)
    except SeriesfeedError as exc:
        await audit_action(console, request, operator, "entries.set", found.id,
                     {**detail, "error": str(exc)}, False)
        return console.done(here, "failed", error=str(exc))
    await audit_action(console, request, operator, "entries.set", found.id, detail, True)
    return console.done(here, "entry")


async def entry_link(console: Console, request: Request, operator: Operator,
                     data: Form | None) -> Response:
    assert data is not None
    original, translation = data.get("original", ""), data.get("translation", "")
    back = "/admin/entries"
    try:
        await console.call(actions.link_translations, console.store, original, translation)
    except SeriesfeedError as exc:
        await audit_action(console, request, operator, "entries.link", original,
                     {"translation": translation, "error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await audit_action(console, request, operator, "entries.link", original,
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
        await audit_action(console, request, operator, "series.set", slug,
                     {"language": lang, "error": str(exc)}, False)
        return console.done("/admin/series", "failed", error=str(exc))
    await audit_action(console, request, operator, "series.set", slug, {"language": lang, **texts},
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
    if name not in console.config.sources:  # a stale page, a hand-made form: audited too
        await audit_action(console, request, operator, "sources.poll", name[:200],
                           {"error": "no such source"}, False)
        return console.done("/admin/sources", "failed", error=name)
    try:  # the poll is async and calls the store in threads itself
        results = await actions.sources.poll_sources(console.store, console.config, [name],
                                                     force=True)
    except SeriesfeedError as exc:
        await audit_action(console, request, operator, "sources.poll", name, {"error": str(exc)},
                     False)
        return console.done("/admin/sources", "failed", error=str(exc))
    ok = all(r.outcome in ("imported", "not-modified") for r in results)
    await audit_action(console, request, operator, "sources.poll", name,
                 {"results": [str(r) for r in results]}, ok)
    return console.done("/admin/sources", "polled" if ok else "poll-failed")


async def source_history(console: Console, request: Request, operator: Operator,
                         data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    name = request.path_params["name"]
    page = page_number(request)
    try:
        found = await console.call(actions.sources.source_history, console.store,
                                   console.config, name, limit=PAGE_SIZE,
                                   offset=(page - 1) * PAGE_SIZE)
    except SeriesfeedError:
        return console.refuse(request, 404, _("There is no such source."))
    return console.page(request, "source.html.j2", title=_("Source {name}", name=name),
                        operator=operator, history=found,
                        pager=pager(request, page, found["total"] > page * PAGE_SIZE))
