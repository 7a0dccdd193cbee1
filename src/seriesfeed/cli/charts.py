"""``seriesfeed charts``: the dashboard's chart data on the command line."""

from __future__ import annotations

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json
from seriesfeed.models import CHART_MAX_DAYS, CHART_MAX_WEEKS

__all__ = ["charts"]


@cli.command("charts")
@click.option("--days", type=click.IntRange(1, CHART_MAX_DAYS), default=30,
              show_default=True, help="Days of the daily charts, today included.")
@click.option("--weeks", type=click.IntRange(1, CHART_MAX_WEEKS), default=12,
              show_default=True, help="Weeks of the weekly chart, this week included.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def charts(app: AppContext, days: int, weeks: int, as_json: bool) -> None:
    """The console's charts as numbers: messages sent per day by language, subscribers
    per day by status and language, hard bounces and complaints per week, source polls per
    day by result (local days and weeks of [site] time_zone)."""
    store, config = app.store, app.config
    found = {
        "messages_per_day": actions.charts.messages_per_day(store, config, days=days),
        "bounces_per_week": actions.charts.bounces_per_week(store, config, weeks=weeks),
        "polls_per_day": actions.charts.polls_per_day(store, config, days=days),
    }
    over_time = actions.charts.subscribers_over_time(store, config, days=days)
    if as_json:
        print_json({**{k: c.to_json() for k, c in found.items()},
                    "subscribers_over_time": {lang: c.to_json()
                                              for lang, c in over_time.items()}})
        return
    # counts per day or week add up; subscribers are a level at each day's end: the last
    titled = [(name.replace("_", " "), chart, True) for name, chart in found.items()]
    titled += [(f"subscribers ({lang})", chart, False) for lang, chart in over_time.items()]
    for title, chart, flow in titled:
        click.echo(f"{title}, per {chart.unit} from {chart.starts[0].isoformat()}:")
        for key, counts in chart.series.items():
            click.echo(f"  {key or '(unknown)':<13} {' '.join(str(n) for n in counts)}  "
                       + (f"(total {sum(counts)})" if flow else f"(now {counts[-1]})"))
