"""Benchmark: bounce intake over a Maildir of ordinary mail with some delivery reports in it,
as the daemon's watch or an operator's `seriesfeed bounces process PATH` meets it.

    .venv/bin/python bench/bounces.py [--messages 20000] [--reports 200] [--src DIR]

Writes the messages into a Maildir in a temporary folder, runs `seriesfeed bounces process`
as a separate process on a fresh SQLite store, and prints messages/s (wall clock, the
command's start included) and CPU seconds per 1,000 messages (the child's user + system time,
from getrusage(RUSAGE_CHILDREN)). ``--src`` runs another checkout's ``src`` (say, an older
commit exported with `git archive`) for a before/after comparison on the same messages.
``--quick`` is the small size the test suite runs. Only local files.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import resource
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = ("The committee met on Tuesday to discuss the schedule for the spring issue; the "
             "minutes follow below, with the budget attached as a table. ") * 6


def _ordinary_template() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Person NNNN <personNNNN@example.net>"
    msg["To"] = "bounces@example.org"
    msg["Subject"] = "Re: the spring issue, part NNNN"
    msg["Message-ID"] = "<NNNN.ordinary@example.net>"
    msg["Date"] = "Mon, 07 Dec 2026 10:00:00 +0000"
    msg.set_content(f"{PARAGRAPH}\n-- \nPerson NNNN\n")
    msg.add_alternative(f"<html><body><p>{PARAGRAPH}</p><p>Person NNNN</p></body></html>",
                        subtype="html")
    return msg.as_bytes()


ORDINARY = _ordinary_template()


def ordinary(n: int) -> bytes:
    """Everyday mail: a reply with text and HTML parts, about 2 KB (rendered once: writing
    20,000 should not take longer than reading them)."""
    return ORDINARY.replace(b"NNNN", str(n).encode())


def report(n: int) -> bytes:
    """A standard delivery status notification (RFC 3464) for a recipient of ours."""
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"To: bounces+{n}-{'0' * 20}@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; reader{n}@example.com\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"From: digest@example.org\nTo: reader{n}@example.com\nSubject: Digest\n\n--B--\n"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="ordinary messages")
    parser.add_argument("--reports", type=int, default=200, help="delivery reports among them")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the code to run")
    parser.add_argument("--quick", action="store_true", help="1,000 messages, 20 reports")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.reports = 1000, 20
    total = args.messages + args.reports
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        config = base / "config.toml"
        config.write_text('[database]\nurl = "sqlite:///store.sqlite3"\n\n[mail]\n'
                          'bounce_address = "bounces@example.org"\n\n[security]\n'
                          f'secret_key = "{"k" * 32}"\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
        cli = [sys.executable, "-m", "seriesfeed", "--config", str(config)]
        subprocess.run([*cli, "init"], check=True, capture_output=True, env=env)
        box = mailbox.Maildir(base / "incoming")
        every = max(total // max(args.reports, 1), 1)
        made = 0
        for n in range(total):
            is_report = made < args.reports and n % every == every - 1
            box.add(report(n) if is_report else ordinary(n))
            made += is_report
        size = sum(p.stat().st_size for p in (base / "incoming" / "new").iterdir())
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        run = subprocess.run([*cli, "bounces", "process", str(base / "incoming")],
                             capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if run.returncode != 0:
            print(f"bounces process failed ({run.returncode}): {run.stderr[-2000:]}")
            sys.exit(1)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        left = len(os.listdir(base / "incoming" / "new"))
    print(f"code: {args.src}; load average {os.getloadavg()[0]:.2f}")
    print(f"maildir: {total} messages ({made} reports), {size / 1e6:.1f} MB")
    print(f"result: {run.stdout.strip()}")
    print(f"wall: {wall:.2f} s, {total / wall:,.0f} messages/s")
    print(f"cpu: {cpu:.2f} s, {cpu / total * 1000:.3f} CPU s per 1,000 messages")
    print(f"left in new/: {left}")


if __name__ == "__main__":
    main()
