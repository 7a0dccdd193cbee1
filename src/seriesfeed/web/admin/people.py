"""The console's pages about people: subscribers (search, filter, show, change status,
erase, lift a suppression) and the audit log of what operators did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from seriesfeed import actions
from seriesfeed.actions import audit, subscriber_admin
from seriesfeed.actions.console import Operator
from seriesfeed.errors import SeriesfeedError, ValidationError
from seriesfeed.models import Frequency, SubscriberStatus
from seriesfeed.web.admin.base import PAGE_SIZE, Console, Form, audit_action, page_number, pager

__all__ = [
    "audit_log",
    "subscriber",
    "subscriber_erase",
    "subscriber_status",
    "subscriber_unsuppress",
    "subscribers",
]


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
    page = page_number(request)
    found = await console.call(subscriber_admin.search_subscribers, console.store,
                               wanted, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return console.page(request, "subscribers.html.j2", title=_("Subscribers"),
                        operator=operator, rows=found.subscribers, total=found.total,
                        chosen=chosen, statuses=[s.value for s in SubscriberStatus],
                        frequencies=[f.value for f in Frequency],
                        pager=pager(request, page, found.total > page * PAGE_SIZE))


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


async def _change(console: Console, request: Request, operator: Operator, data: Form | None,
                  verb: Callable[..., Any], field: str, said: str) -> Response:
    """A change to one subscriber whose verb records its own audit row (with the change,
    in one transaction): back to their page with what was done or why not."""
    assert data is not None
    email = data.get("email", "")[:320]
    back = f"/admin/subscribers/show?{urlencode({'email': email})}"
    try:
        await console.call(verb, console.store, email, data.get(field, ""),
                           actor=_actor(console, request, operator))
    except SeriesfeedError as exc:
        return console.done(back, "failed", error=str(exc))
    return console.done(back, said)


async def subscriber_status(console: Console, request: Request, operator: Operator,
                            data: Form | None) -> Response:
    return await _change(console, request, operator, data, subscriber_admin.set_status,
                         "status", "status")


async def subscriber_unsuppress(console: Console, request: Request, operator: Operator,
                                data: Form | None) -> Response:
    """The reason is required (the verb says so, and records it)."""
    return await _change(console, request, operator, data, subscriber_admin.unsuppress,
                         "reason", "unsuppressed")


async def subscriber_erase(console: Console, request: Request, operator: Operator,
                           data: Form | None) -> Response:
    """GET: the confirmation step; POST (with ``confirm``): erase."""
    _ = console.messages(console.language(request))
    if data is None:
        email = request.query_params.get("email", "")[:320]
        return console.page(request, "erase.html.j2", title=_("Erase a subscriber"),
                            operator=operator, email=email)
    email = data.get("email", "")[:320]
    actor = _actor(console, request, operator)
    if data.get("confirm") != email:
        said = _("type the address again to confirm")
        await console.call(subscriber_admin.record_refusal, console.store, actor,
                           "subscribers.remove", email, {}, ValidationError(said))
        return console.done(f"/admin/subscribers/erase?{urlencode({'email': email})}",
                            "failed", error=said)
    try:
        await console.call(actions.subscribers.remove_subscriber, console.store, email)
    except SeriesfeedError as exc:
        # erased already (a second submit), or never one: masked, as nothing will scrub it
        await console.call(subscriber_admin.record_refusal, console.store, actor,
                           "subscribers.remove", email, {}, exc)
        return console.done("/admin/subscribers", "failed", error=str(exc))
    # the audit keeps no copy of an erased address: that is the point of erasing it
    await audit_action(console, request, operator, "subscribers.remove", None, None, True)
    return console.done("/admin/subscribers", "erased")


async def audit_log(console: Console, request: Request, operator: Operator,
                    data: Form | None) -> Response:
    _ = console.messages(console.language(request))
    page = page_number(request)
    action = (request.query_params.get("action") or "")[:64] or None
    rows = await console.call(audit.log, console.store, limit=PAGE_SIZE + 1,
                              offset=(page - 1) * PAGE_SIZE, action=action)
    return console.page(request, "audit.html.j2", title=_("Audit log"), operator=operator,
                        rows=[r.to_json(console.config.zone) for r in rows[:PAGE_SIZE]],
                        action=action or "",
                        pager=pager(request, page, len(rows) > PAGE_SIZE))
