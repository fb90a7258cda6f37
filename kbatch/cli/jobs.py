"""``kbatch run``, ``kbatch schedule``, ``kbatch runs``: nightly jobs from ``jobs/*.yaml``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from kbatch.cli.common import add_command, add_debug_option
from kbatch.errors import InputError
from kbatch.io import storage

RUN_EXAMPLES = """\
examples:
  python -m kbatch run jobs/nightly_product_matching.yaml --date 2026-11-26
      match that night's seller offers against the catalog; writes out/nightly_product_matching/2026-11-26/

  python -m kbatch run jobs/weekly_review_topics.yaml
      without --date: the day before today in the job's time zone (what cron runs)

Safe to call from cron, systemd, Airflow or Prefect: a second run of the same night exits
with code 8; a killed run resumes where it stopped when run again; the night's output
directory appears complete (every step, _run.json, report.html) or not at all; a night
that is already complete is not run again. With 'cache:' in the job file, texts embedded
on earlier nights are not embedded again.
"""

SCHEDULE_EXAMPLES = """\
examples:
  python -m kbatch schedule jobs/nightly_product_matching.yaml
      print the crontab entry (add it with 'crontab -e')
  python -m kbatch schedule jobs/nightly_product_matching.yaml --systemd
      print a systemd service and timer instead
  python -m kbatch schedule jobs/nightly_product_matching.yaml --foreground
      stay running and start the job on its cron, one log line per run
"""


def add_parser(commands) -> None:
    run = add_command(commands, "run", "run one night of a job file", "Run every step of a job file for one date.", RUN_EXAMPLES)
    run.add_argument("job", help="job file (YAML), e.g. jobs/nightly_product_matching.yaml")
    run.add_argument("--date", help="the {date} of the job's paths, YYYY-MM-DD (default: yesterday in the job's time zone)")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_debug_option(run)
    run.set_defaults(run=run_command)

    schedule = add_command(commands, "schedule", "print a crontab entry or systemd timer for a job, or run it on its cron",
                           "Turn a job's schedule (cron and time zone) into something that starts it every night.", SCHEDULE_EXAMPLES)
    schedule.add_argument("job", help="job file (YAML) with a 'schedule:'")
    schedule.add_argument("--systemd", action="store_true", help="print a systemd .service and .timer instead of a crontab line")
    schedule.add_argument("--foreground", action="store_true", help="stay running and start the job on its schedule")
    add_debug_option(schedule)
    schedule.set_defaults(run=schedule_command)

    runs = add_command(commands, "runs", "list the runs of jobs under a directory", "List past job runs from their _run.json files.",
                       "example:\n  python -m kbatch runs out/\n")
    runs.add_argument("directory", help="where job outputs are, e.g. out/")
    add_debug_option(runs)
    runs.set_defaults(run=runs_command)


def run_command(args: argparse.Namespace) -> int:
    from kbatch.jobs.run import run_job
    from kbatch.jobs.spec import check_date, load_job

    job = load_job(args.job)
    date = _default_date(job) if args.date is None else check_date(args.date)
    run_job(job, date, progress=args.progress)
    return 0


def schedule_command(args: argparse.Namespace) -> int:
    from kbatch.jobs.schedule import crontab_line, run_forever, systemd_units
    from kbatch.jobs.spec import load_job

    job = load_job(args.job)
    if job.schedule is None:
        raise InputError(f"job file {args.job} has no 'schedule:' (cron and timezone)")
    command = [sys.executable, "-m", "kbatch", "run", storage.location(args.job), "--no-progress"]
    if args.foreground:
        first = job.schedule.next_after(datetime.now(timezone.utc))
        print(f"kbatch schedule: {job.name} runs at {job.schedule.cron} ({job.schedule.timezone}); first run at {first.isoformat()}",
              file=sys.stderr, flush=True)
        run_forever(job.schedule, lambda date: subprocess.call([*command, "--date", date]))
    elif args.systemd:
        service, timer = systemd_units(job.schedule, f"kbatch-{job.name}", command, os.getcwd())
        print(f"# ~/.config/systemd/user/kbatch-{job.name}.service\n{service}\n# ~/.config/systemd/user/kbatch-{job.name}.timer\n{timer}")
    else:
        log = str(Path("out").resolve() / f"{job.name}.log")
        print(crontab_line(job.schedule, command, log, workdir=os.getcwd()))
    return 0


def runs_command(args: argparse.Namespace) -> int:
    from kbatch.jobs.history import find_runs, format_runs

    print(format_runs(find_runs(args.directory)))
    return 0


def _default_date(job) -> str:
    if job.schedule is None:
        raise InputError(f"job {job.name} has no schedule to take the date from: pass --date YYYY-MM-DD")
    return job.schedule.run_date(datetime.now(timezone.utc))
