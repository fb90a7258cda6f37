"""Live progress of a kbatch run on the Dask dashboard (``/kbatch``) and on its Prometheus endpoint (``/metrics``).

The plugin lives in the scheduler process, so the page and the metrics are served by the
scheduler's own web server for as long as the cluster runs; the client only sends counters.

    page = install(client)           # e.g. http://127.0.0.1:8787/kbatch
    report(client, "embed catalog", rows_done=4_000, rows_total=10_000)
"""

from __future__ import annotations

import html
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin
from tornado import web

try:
    from prometheus_client import REGISTRY
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # metrics are optional: without prometheus_client the page still works
    REGISTRY = None

if TYPE_CHECKING:
    from collections.abc import Iterator

    from distributed import Client, Scheduler

NAME = "kbatch"
"""The plugin's name, the event topic reports travel on, and the page's path."""

_GAUGES = {
    "rows_done": "Rows a kbatch step has finished",
    "rows_total": "Rows a kbatch step has in all",
    "throughput_rows_per_second": "Rows per second since the scheduler first heard of the step",
    "eta_seconds": "Seconds a kbatch step still needs at its throughput so far",
}
"""Prometheus gauges, ``kbatch_<key>``, one sample per step; keys are those of ``ProgressPlugin.snapshot``."""


@dataclass
class Step:
    """One step's counters as last reported, with when the scheduler first and last heard of it."""

    rows_done: int
    rows_total: int
    started: float  # time.monotonic() of the first report
    updated: float  # time.monotonic() of the latest report
    rows_at_start: int  # already done at the first report, whose time the scheduler never saw
    finished: bool = False

    def throughput(self, now: float) -> float:
        """Rows per second since the first report; frozen at the last report once the step is finished."""
        elapsed = (self.updated if self.finished else now) - self.started
        return (self.rows_done - self.rows_at_start) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        """Seconds left at the throughput so far; None while there is no throughput to go by."""
        if self.finished:
            return 0.0
        rate = self.throughput(now)
        return max(self.rows_total - self.rows_done, 0) / rate if rate > 0 else None

    def as_dict(self, name: str, now: float) -> dict[str, Any]:
        return {
            "step": name,
            "rows_done": self.rows_done,
            "rows_total": self.rows_total,
            "finished": self.finished,
            "throughput_rows_per_second": self.throughput(now),
            "eta_seconds": self.eta(now),
        }


class ProgressPlugin(SchedulerPlugin):
    """Keeps per-step counters in the scheduler and serves them as a page, as JSON and as Prometheus gauges."""

    name = NAME

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.scheduler: Scheduler | None = None

    async def start(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        previous = scheduler.plugins.get(NAME)
        if previous is not None:
            # Replace, not stack: add_plugin would only warn, and never closes the plugin it overwrites.
            scheduler.remove_plugin(NAME)
            await previous.close()
        _serve(scheduler)
        _METRICS.watch(self)

    async def close(self) -> None:
        _METRICS.forget(self)

    @property
    def installed(self) -> bool:
        """Still the scheduler's kbatch plugin: ``unregister_scheduler_plugin`` drops a plugin without closing it."""
        return self.scheduler is not None and self.scheduler.plugins.get(NAME) is self

    def log_event(self, topic: str, msg: Any) -> None:
        if topic == NAME:
            self.record(**msg)

    def record(self, step: str, rows_done: int, rows_total: int, finished: bool) -> None:
        now = time.monotonic()
        known = self.steps.get(step)
        if known is None:
            self.steps[step] = Step(rows_done, rows_total, started=now, updated=now, rows_at_start=rows_done, finished=finished)
        else:
            known.rows_done, known.rows_total, known.updated, known.finished = rows_done, rows_total, now, finished

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [step.as_dict(name, now) for name, step in self.steps.items()]


class _Metrics:
    """The process's one Prometheus collector, over every live plugin.

    prometheus_client's default registry (the one Dask serves on ``/metrics``) refuses a second
    collector with the same metric names, and in-process clusters put several schedulers in one process.
    """

    def __init__(self) -> None:
        self.plugins: list[ProgressPlugin] = []

    def watch(self, plugin: ProgressPlugin) -> None:
        if REGISTRY is not None and not self.plugins:
            REGISTRY.register(self)
        self.plugins.append(plugin)

    def forget(self, plugin: ProgressPlugin) -> None:
        if plugin not in self.plugins:
            return
        self.plugins.remove(plugin)
        if REGISTRY is not None and not self.plugins:
            REGISTRY.unregister(self)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {key: GaugeMetricFamily(f"kbatch_{key}", text, labels=["step"]) for key, text in _GAUGES.items()}
        for step in [step for plugin in self.plugins if plugin.installed for step in plugin.snapshot()]:
            for key, family in families.items():
                if step[key] is not None:
                    family.add_metric([step["step"]], step[key])
        yield from families.values()


_METRICS = _Metrics()

_served: weakref.WeakSet[web.Application] = weakref.WeakSet()
"""Web applications that already have the kbatch routes: tornado keeps the first match and cannot drop a route."""


def _serve(scheduler: Scheduler) -> None:
    """Add ``/kbatch`` and ``/kbatch.json`` to the scheduler's web server, once per server."""
    app = getattr(scheduler, "http_application", None)
    if app is None or app in _served:
        return
    # Any prefix, so the page sits next to a dashboard served under one (dask scheduler --dashboard-prefix).
    app.add_handlers(
        r".*",
        [
            (r"(?:/.*)?/kbatch", _PageHandler, {"scheduler": scheduler}),
            (r"(?:/.*)?/kbatch\.json", _JsonHandler, {"scheduler": scheduler}),
        ],
    )
    _served.add(app)


class _PageHandler(web.RequestHandler):
    def initialize(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def steps(self) -> list[dict[str, Any]]:
        """The current plugin's steps, looked up per request so that a re-installed plugin is the one shown."""
        plugin = self.scheduler.plugins.get(NAME)
        return plugin.snapshot() if isinstance(plugin, ProgressPlugin) else []

    def get(self) -> None:
        self.write(_page(self.steps()))


class _JsonHandler(_PageHandler):
    def get(self) -> None:
        self.write({"steps": self.steps()})  # tornado writes a dict as JSON, never a bare list


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>kbatch progress</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
th, td {{ padding: .3em 1em; text-align: left; }}
.bar {{ width: 20em; background: #eee; }}
.bar div {{ height: 1em; background: #1f77b4; }}
</style></head>
<body><h1>kbatch progress</h1>
<table><tr><th>step</th><th>rows done / total</th><th>progress</th><th>rows/s</th><th>ETA</th></tr>
{rows}
</table><p><a href="kbatch.json">JSON</a></p></body></html>
"""


def _page(steps: list[dict[str, Any]]) -> str:
    rows = "\n".join(map(_row, steps)) or '<tr><td colspan="5">no step reported yet</td></tr>'
    return _PAGE.format(rows=rows)


def _row(step: dict[str, Any]) -> str:
    done, total = step["rows_done"], step["rows_total"]
    percent = 100.0 * min(done / total, 1.0) if total else 0.0
    eta = "done" if step["finished"] else _duration(step["eta_seconds"])
    return (
        f"<tr><td>{html.escape(step['step'])}</td><td>{done:,} / {total:,}</td>"
        f'<td><div class="bar"><div style="width: {percent:.1f}%"></div></div></td>'
        f"<td>{step['throughput_rows_per_second']:,.1f}</td><td>{eta}</td></tr>"
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def install(client: Client) -> str | None:
    """Put the progress plugin on the client's scheduler and return the kbatch page's URL.

    Installing again replaces the plugin and forgets earlier steps, so each run starts with a
    clean table. None when the scheduler serves no dashboard to put the page on.
    """
    client.register_plugin(ProgressPlugin())
    if "dashboard" not in client.scheduler_info().get("services", {}):
        return None
    return client.dashboard_link.removesuffix("/status").rstrip("/") + "/kbatch"


def report(client: Client, step: str, rows_done: int, rows_total: int, finished: bool = False) -> None:
    """Send one step's counters to the plugin, in one round trip; where no plugin listens nothing happens.

    Goes through the scheduler's event log rather than ``run_on_scheduler``: no code for the scheduler
    to unpickle, and no scheduler log line per call. Report 0 rows as a step starts, so that its
    throughput counts from then.
    """
    # int()/bool(): numpy scalars are not msgpack serializable, and log_event sends msgpack.
    msg = {"step": step, "rows_done": int(rows_done), "rows_total": int(rows_total), "finished": bool(finished)}
    client.log_event(NAME, msg)
