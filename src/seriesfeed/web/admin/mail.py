"""The console's mail pages: the outbox (filter, retry), digests (list, show the
recipients not reached, retry), the digest preview in any language and a test copy."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from seriesfeed import actions
from seriesfeed.actions import audit
from seriesfeed.actions.console import Operator
from seriesfeed.errors import SeriesfeedError, read_stored_int
from seriesfeed.models import Frequency, OutboxState
from seriesfeed.web.admin.base import (
    PAGE_SIZE,
    Console,
    Form,
    audit_action,
    console_path,
    page_number,
    pager,
)

__all__ = [
    "digest",
    "digest_retry",
    "digests",
    "outbox",
    "outbox_retry",
    "preview",
    "preview_html",
    "test_send",
]


async def outbox(console: Console, request: Request, operator: Operator,
                 data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    state = request.query_params.get("state") or None
    if state not in (None, *(s.value for s in OutboxState)):
        state = None
    page = page_number(request)
    rows = await console.call(actions.ops.list_outbox, console.store, console.config,
                              state=state, limit=PAGE_SIZE + 1,
                              offset=(page - 1) * PAGE_SIZE, newest_first=True)
    return console.page(request, "outbox.html.j2", title=_("Outbox"), operator=operator,
                        rows=rows[:PAGE_SIZE], state=state,
                        states=[s.value for s in OutboxState],
                        pager=pager(request, page, len(rows) > PAGE_SIZE))


def _ids(raw: str) -> list[int]:
    """The ticked rows' ids; one that is no id refuses the whole form, never acts on
    whichever row a lenient reading of it names."""
    return [read_stored_int(p, "id", minimum=1) for p in raw.split(",") if p.strip()][:1000]


async def outbox_retry(console: Console, request: Request, operator: Operator,
                       data: Form | None) -> Response:
    assert data is not None
    back = console_path(data.get("back", ""), "/admin/outbox")
    ids: list[int] = []
    try:
        ids = _ids(data.get("id", ""))
        done = await console.call(actions.ops.retry_outbox, console.store, ids)
    except SeriesfeedError as exc:
        await audit_action(console, request, operator, "outbox.retry", ",".join(map(str, ids)),
                     {"error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await audit_action(console, request, operator, "outbox.retry", ",".join(map(str, ids)),
                 {"retried": done.queued}, True)
    return console.done(back, "retried" if done.queued else "retry-none", n=len(done.queued))


async def digests(console: Console, request: Request, operator: Operator,
                  data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    page = page_number(request)
    every = list(reversed(await console.call(actions.ops.list_digests, console.store,
                                             console.config)))
    shown = every[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return console.page(request, "digests.html.j2", title=_("Digests"), operator=operator,
                        digests=shown, pager=pager(request, page, len(every) > page * PAGE_SIZE))


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
        await audit_action(console, request, operator, "digests.retry", str(number),
                     {"error": str(exc)}, False)
        return console.done(back, "failed", error=str(exc))
    await audit_action(console, request, operator, "digests.retry", str(number),
                 {"retried": done.queued, "skipped": done.skipped}, True)
    return console.done(back, "retried" if done.queued else "retry-none", n=len(done.queued))


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
                               frequency, release=False)  # a GET never publishes
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
                               frequency, release=False)  # a GET never publishes
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
        # often an address that is no subscriber's (or an erased one's): no erasure
        # would ever scrub it
        await audit_action(console, request, operator, "digest.test-send",
                           *audit.hide_addresses(to, {"language": lang, "error": str(exc)}),
                           False)
        return console.done(back, "failed", error=str(exc))
    # the Message-ID has an @ too, and is no one's address: added once the target is masked
    target, hidden = audit.hide_addresses(sent.address, None)
    await audit_action(console, request, operator, "digest.test-send", target,
                       {**hidden, "language": lang, "frequency": frequency.value,
                        "message_id": sent.message_id}, True)
    return console.done(back, "test-sent")
