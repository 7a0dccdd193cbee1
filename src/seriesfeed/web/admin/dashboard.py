"""The console's first page: the status line that answers "is everything all right?",
the figures `status` prints, the last digests, the sources, and the charts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from seriesfeed import actions, i18n, svgcharts
from seriesfeed.actions.console import Operator
from seriesfeed.web.admin.base import Console, Form
from seriesfeed.web.admin.words import WORDS

__all__ = ["dashboard"]


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
