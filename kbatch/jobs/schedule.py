"""When a job runs: a cron expression read in an IANA time zone.

The same schedule drives three things that must agree: the crontab line and the systemd
timer that ``kbatch schedule JOB.yaml`` prints, and the loop that ``--foreground`` runs.
Only the cron syntax all three understand is accepted (Vixie cron/cronie: numbers, ``*``,
lists, ranges, steps, month and weekday names), so a schedule that parses is one that
cron installs and that the foreground loop fires at the same moments.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from kbatch.errors import InputError

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_WEEKDAYS = "sun|mon|tue|wed|thu|fri|sat"


def _field_pattern(names: str | None) -> re.Pattern[str]:
    """``*``, ``*/S``, ``V``, ``V-V`` or ``V-V/S``, comma-separated; not croniter's extras
    (``L``, ``#``, ``?``, ``H``, ``V/S``), which cron rejects when the line is installed."""
    value = rf"(?:\d+|{names})" if names else r"\d+"
    item = rf"(?:\*|{value}-{value})(?:/\d+)?|{value}"
    return re.compile(rf"(?:{item})(?:,(?:{item}))*", re.IGNORECASE)


_FIELD_PATTERNS = tuple(_field_pattern(names) for names in (None, None, None, _MONTHS, _WEEKDAYS))
_NAME_NUMBERS = {name: i + 1 for i, name in enumerate(_MONTHS.split("|"))} | {name: i for i, name in enumerate(_WEEKDAYS.split("|"))}
# Longest a foreground sleep lasts before the wall clock is read again: a suspended
# machine or a clock step would otherwise leave the loop asleep past its fire time.
_MAX_NAP_SECONDS = 60.0
_SYSTEMD_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+")
# What no quoting carries into each target, and why it is refused.
_UNWRITABLE = {
    "crontab line": (re.compile(r"[\x00-\x1f\x7f]|\\%"), "a control character or a backslash before '%'"),
    "systemd unit": (re.compile(r"[\x00-\x1f\x7f]"), "a control character"),
}


@dataclass(frozen=True)
class Schedule:
    """A 5-field cron expression fired by the wall clock of ``timezone``."""

    cron: str
    timezone: str

    @classmethod
    def parse(cls, cron: str, timezone: str) -> Schedule:
        """Check both values up front, so a typo in a job file fails when it is scheduled,
        not at 02:00 on the first night."""
        fields = cron.split()
        if len(fields) != len(_FIELDS):
            raise InputError(f"cron expression {cron!r} needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
        for name, field, pattern in zip(_FIELDS, fields, _FIELD_PATTERNS, strict=True):
            if not pattern.fullmatch(field):
                raise InputError(f"cron expression {cron!r}: {name} field {field!r} is not cron syntax")
            for low, high in re.findall(r"(\w+)-(\w+)", field):
                if _number(low) > _number(high):
                    raise InputError(f"cron expression {cron!r}: {name} range {low}-{high} runs backwards, which cron rejects")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {timezone!r}: use an IANA name such as 'Asia/Seoul'") from None
        schedule = cls(" ".join(fields), timezone)
        try:
            schedule.next_after(datetime(2000, 1, 1, tzinfo=ZoneInfo(timezone)))
        except CroniterBadDateError:
            raise InputError(f"cron expression {cron!r} never fires (no such day)") from None
        except CroniterError as exc:
            raise InputError(f"cron expression {cron!r} is invalid: {exc}") from None
        return schedule

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_after(self, moment: datetime) -> datetime:
        """The next fire strictly after ``moment``, in the schedule's zone.

        Fires follow the local wall clock, once per wall time: on a spring-forward day a
        time that does not exist (02:30 in New York) fires once at the first moment after
        the jump (croniter gives 03:00 local); on a fall-back day a time that happens twice
        (01:30) fires only the first time, so a daily job does not process its date twice.
        """
        if moment.tzinfo is None:
            raise ValueError(f"next_after needs an aware datetime, got {moment!r}")
        fires = croniter(self.cron, moment.astimezone(self.zone), day_or=_days_either(self.cron))
        fire = fires.get_next(datetime)
        while fire.fold:  # the second pass through a repeated hour
            fire = fires.get_next(datetime)
        return fire

    def run_date(self, fire: datetime) -> str:
        """The day a run fired at ``fire`` processes: the local day before, since a nightly
        run starts after midnight, when yesterday's data is complete."""
        return (fire.astimezone(self.zone).date() - timedelta(days=1)).isoformat()


def crontab_line(schedule: Schedule, command: list[str], log_path: str, *, workdir: str | None = None) -> str:
    """The crontab entry: ``CRON_TZ`` so cron reads the fields in the job's zone, the
    command shell-quoted, its output appended to ``log_path``; with ``workdir``, a ``cd``
    first so relative paths in the job file mean what they mean here.

    ``%`` is escaped because cron turns a bare one into a newline. ``CRON_TZ`` is honoured
    by cronie (Fedora, RHEL, Arch); Debian's cron ignores it and uses the system zone.
    """
    _check_words([*command, log_path, *([workdir] if workdir is not None else [])], "crontab line")
    shell = " ".join(shlex.quote(part) for part in command) + f" >> {shlex.quote(log_path)} 2>&1"
    if workdir is not None:
        shell = f"cd {shlex.quote(workdir)} && {shell}"
    return f"CRON_TZ={schedule.timezone}\n{schedule.cron} " + shell.replace("%", "\\%")


def systemd_units(schedule: Schedule, name: str, command: list[str], workdir: str) -> tuple[str, str]:
    """``name.service`` and ``name.timer``: a oneshot service and a timer whose
    ``OnCalendar`` is the cron expression in systemd's syntax, with ``Persistent=true`` so
    a night missed while the machine was off runs at the next boot. Unlike cron and
    ``next_after``, systemd skips a time that a spring-forward change removes."""
    if not _UNIT_NAME.fullmatch(name):
        raise InputError(f"systemd unit name {name!r} may hold only letters, digits and ':_.\\-'")
    _check_words([*command, workdir], "systemd unit")
    service = (
        f"[Unit]\nDescription=kbatch job {name}\n\n"
        f"[Service]\nType=oneshot\nWorkingDirectory={workdir.replace('%', '%%')}\n"
        f"ExecStart={' '.join(_systemd_quote(part) for part in command)}\n"
    )
    timer = (
        f"[Unit]\nDescription=kbatch job {name} at cron {schedule.cron} ({schedule.timezone})\n\n"
        "[Timer]\n# A time zone in OnCalendar needs systemd >= 241.\n"
        f"OnCalendar={on_calendar(schedule)}\nPersistent=true\nUnit={name}.service\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return service, timer


def on_calendar(schedule: Schedule) -> str:
    """The cron fields as a systemd calendar event in the schedule's zone.

    systemd requires day-of-month AND day-of-week; cron means OR when both are restricted,
    which one ``OnCalendar`` cannot say.
    """
    if _days_either(schedule.cron):
        _, _, day, _, weekday = schedule.cron.split()
        raise InputError(
            f"cron expression {schedule.cron!r} fires on day-of-month {day!r} OR day-of-week {weekday!r}, "
            "which a systemd timer cannot express: use crontab, or two schedules"
        )
    (minutes, hours, days, months, weekdays), _ = croniter.expand(schedule.cron)
    date = f"*-{_calendar_values(months, 1, 12)}-{_calendar_values(days, 1, 31)}"
    time_of_day = f"{_calendar_values(hours, 0, 23)}:{_calendar_values(minutes, 0, 59)}:00"
    weekday_part = _calendar_weekdays(weekdays)
    return f"{weekday_part + ' ' if weekday_part else ''}{date} {time_of_day} {schedule.timezone}"


def _calendar_values(values: list, low: int, high: int) -> str:
    """``*``, ``start/step`` (a step that runs to the field's end), or runs ``a..b`` and
    single values, zero-padded as systemd prints them."""
    numbers = sorted(set(values) - {"*"})
    if not numbers or numbers == list(range(low, high + 1)):
        return "*"
    step = numbers[1] - numbers[0] if len(numbers) > 1 else 0
    if step > 1 and numbers == list(range(numbers[0], high + 1, step)):
        return f"{numbers[0]:02d}/{step}"
    return _join_runs(numbers, lambda number: f"{number:02d}")


def _calendar_weekdays(values: list) -> str:
    """Cron weekdays (0 or 7 = Sunday) as systemd names from Monday; empty for every day."""
    days = sorted({(day - 1) % 7 for day in values if day != "*"})
    return "" if len(days) in (0, 7) else _join_runs(days, _SYSTEMD_WEEKDAYS.__getitem__)


def _join_runs(numbers: list[int], label: Callable[[int], str]) -> str:
    """Sorted numbers as a systemd list: three or more consecutive ones as ``a..b``."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ",".join(f"{label(run[0])}..{label(run[-1])}" if len(run) > 2 else ",".join(map(label, run)) for run in runs)


def _check_words(words: list[str], target: str) -> None:
    """Refuse what no quoting carries: a control character ends the line, so a newline in a
    path would add a crontab entry or a unit directive; and cron, which turns ``\\%`` into
    ``%``, has no way to write a backslash before a ``%``."""
    unwritable, why = _UNWRITABLE[target]
    for word in words:
        if unwritable.search(word):
            raise InputError(f"cannot write {word!r} into a {target}: it holds {why}")


def _systemd_quote(part: str) -> str:
    """One ``ExecStart`` word: systemd expands ``%`` specifiers and ``$`` variables even
    inside quotes, and unquotes C-style, so shell quoting does not carry over."""
    escaped = part.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[\w@%+=:,./-]+", part):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _days_either(cron: str) -> bool:
    """Cron fires on day-of-month OR day-of-week when both are restricted, but on both when
    either starts with ``*`` (``*/2``); croniter alone would use OR for ``0 2 */2 * 1``."""
    _, _, day, _, weekday = cron.split()
    return not (day.startswith("*") or weekday.startswith("*"))


def _number(value: str) -> int:
    """A cron field value, a number or a month or weekday name."""
    return int(value) if value.isdigit() else _NAME_NUMBERS[value.lower()]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def run_forever(
    schedule: Schedule,
    run: Callable[[str], int],
    *,
    now: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
    log: TextIO = sys.stderr,
    max_runs: int | None = None,
) -> None:
    """Fire ``run(date)`` on the schedule, for ``--foreground`` where no cron is at hand.

    One log line per run. A run that fails, by exit code or exception, is logged and the
    loop waits for the next fire, as cron would. A run that outlasts the next fire skips it
    rather than queueing it. Ctrl-C ends the loop between or during runs.
    """
    runs = 0
    last_fire: datetime | None = None
    try:
        while max_runs is None or runs < max_runs:
            moment = now()
            fire = schedule.next_after(moment if last_fire is None else max(moment, last_fire))
            while (wait := (fire - now()).total_seconds()) > 0:
                sleep(min(wait, _MAX_NAP_SECONDS))
            date = schedule.run_date(fire)
            started = time.monotonic()
            try:
                outcome = f"exit {run(date)}"
            except Exception as exc:
                outcome = "failed: " + " ".join(f"{type(exc).__name__}: {exc}".split())
            seconds = time.monotonic() - started
            print(f"kbatch schedule: run at {fire.isoformat()} for {date}: {outcome} after {seconds:.1f}s", file=log, flush=True)
            last_fire = fire
            runs += 1
    except KeyboardInterrupt:
        print("kbatch schedule: stopped", file=log, flush=True)
