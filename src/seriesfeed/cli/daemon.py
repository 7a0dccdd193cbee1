"""``seriesfeed run`` (the daemon) and ``seriesfeed status``."""

from __future__ import annotations

from datetime import datetime

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json
from seriesfeed.errors import SeriesfeedError

__all__ = ["run", "status"]


@cli.command()
@click.option("--sender-only", is_flag=True,
              help="Only drain the outbox (PostgreSQL: join another daemon's store).")
@click.option("--no-web", is_flag=True, help="Do not serve HTTP.")
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human",
              show_default=True)
@pass_app
def run(app: AppContext, sender_only: bool, no_web: bool, log_format: str) -> None:
    """Run the daemon: rebuild feeds, send digests on schedule, serve the web app.

    Stops cleanly on SIGTERM or SIGINT (work in flight finishes, bounded by
    [schedule] shutdown_timeout) and exits 0."""
    import asyncio  # here, as the rest: `status` runs no event loop and sets up no log

    from seriesfeed import daemon as daemon_mod  # the whole stack: only for this command
    from seriesfeed.logs import setup_logging

    setup_logging(log_format, zone=app.config.zone)
    config, store = app.config, app.store
    serve_web = not no_web and not sender_only
    lines: list[str] = []

    def listening() -> None:  # "serving" only once a client can connect
        for line in lines:
            click.echo(line, err=True)

    daemon = daemon_mod.build_daemon(config, store, sender_only=sender_only,
                                     serve_web=serve_web, on_listening=listening)
    with actions.runner_lock(store, sender_only=sender_only):
        # before serving: /healthz and the log tell the truth from the first request (a
        # damaged store is logged; the daemon stays up and answers "down")
        actions.check_health(config, store)
        if serve_web:
            try:  # read here: the event loop never waits on the store
                lines[:] = daemon_mod.startup_urls(config, store)
            except SeriesfeedError:  # a damaged store: the log and /healthz say so
                lines[:] = [f"seriesfeed: serving {config.public_url}/"]
        asyncio.run(daemon.run())


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Show the store's check, jobs (next and last run), outbox and subscriber counts,
    entries. Exits 1 when the store fails its check (SQLite's quick_check)."""
    problems = actions.check_health(app.config, app.store, log_failure=False)
    if problems:
        # counts may still be read through intact indexes: they would look healthy
        if as_json:
            print_json({"store": app.store.describe(),
                        "store_check": {"ok": False, "problems": problems}})
        else:
            click.echo(f"store: {app.store.describe()}")
            for problem in problems:
                click.echo(f"store check: FAILED: {problem}")
        raise actions.damaged(app.store, problems)
    report = {"store_check": {"ok": True, "problems": []},
              **actions.status_report(app.config, app.store)}
    if as_json:
        print_json(report)
        return
    click.echo(f"store: {report['store']} (schema {report['schema']})")
    click.echo("store check: ok")
    click.echo("entries: " + ", ".join(f"{k} {v}" for k, v in
                                       dict(report["entries"]).items()) or "none")
    click.echo("subscribers: " + (", ".join(f"{k} {v}" for k, v in
                                           dict(report["subscribers"]).items()) or "none"))
    click.echo("outbox: " + (", ".join(f"{k} {v}" for k, v in
                                      dict(report["outbox"]).items()) or "empty"))
    if report["last_error"]:
        click.echo(f"last delivery error: {report['last_error']}")
    if "nodes" in report:  # several daemons on PostgreSQL
        leader = report["leader"]
        click.echo(f"leader: {leader['node']} (epoch {leader['epoch']}, since "
                   f"{leader['since']})" if leader else "leader: none")
        for node in report["nodes"]:
            click.echo(f"node {node['node']} pid {node['pid']} on {node['host']} started "
                       f"{node['started']} last heartbeat {node['last_heartbeat']}"
                       f"{' (leader)' if node['leader'] else ''}")
    for job in report["jobs"]:
        last = job["last"] or {}
        result = "-" if not last else ("ok" if last.get("ok") else "FAILED")
        click.echo(f"job {job['name']:<14} next {job['next'] or '-':<26} last "
                   f"{last.get('started_at') or '-'} {result} {last.get('summary') or ''}")
