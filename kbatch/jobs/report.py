"""``report.html`` of a nightly run: what a data engineer reads the next morning to see whether it worked and where time went.

The page is one self-contained file (inline SVG and tables, no scripts, nothing to fetch), so it can be mailed or opened
from any share, and Korean keywords stay text that browsers render with the reader's own fonts. Every value taken from
the manifest is escaped: step names, paths and error messages come from user input and stack traces.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from urllib.parse import quote

from kbatch.html import OUTLIER, OUTLIER_COLOUR, nice_step, page, tick_text, ticks, topic_counts
from kbatch.io import storage

STATUS_COLOURS = {"complete": "#2e7d32", "reused": "#1565c0", "failed": "#c62828", "skipped": "#9e9e9e"}
UNKNOWN_COLOUR = "#616161"
TOPIC_COLOUR = "#4363d8"
SCORE_COLOUR = "#3cb44b"
MAX_TOPIC_BARS = 30  # more bars than this are unreadable
LABEL_WORDS = 3
MISSING = "—"
PERFORMANCE = "Dask performance report"
PERFORMANCE_WHAT = "the task stream, profiles and bandwidth of this run, saved when it ended"
DASHBOARD_NOTE = "live only while the run was going"
STEP_COLUMNS = ("step", "command", "status", "rows", "rows done", "seconds", "rows/s", "cache hit rate", "output")

BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, BAR_WIDTH, VALUE_WIDTH = 20, 6, 260, 420, 90
HIST_WIDTH, HIST_HEIGHT, HIST_LEFT, HIST_BOTTOM, HIST_TOP, HIST_TICKS, HIST_COUNT_TICKS = 640, 260, 60, 44, 12, 10, 5


def write_run_report(path: str | os.PathLike[str], run: dict) -> str:
    """Write the HTML report of ``run`` (a run manifest) to ``path``; returns the path written.

    Written atomically so a reader never sees half a page, even when the next run overwrites it.
    """
    target = os.fspath(path)
    storage.write_bytes(target, _page(run, storage.parent_of(target)).encode("utf-8"))
    return target


def _e(value: object) -> str:
    return html.escape(str(value))


def _page(run: dict, folder: str) -> str:
    steps = run.get("steps") or []
    title = f"{run.get('job') or 'run'} {run.get('date') or ''}".strip()
    sections = [
        _header(run, folder),
        _steps_table(steps),
        *(chart for step in steps for chart in _step_charts(step)),
        _seconds_chart(steps),
    ]
    body = "\n".join(section for section in sections if section)
    css = (
        "svg text { font-family: inherit; font-size: 12px; }\n"
        ".badge { color: #fff; border-radius: 4px; padding: 1px 8px; font-size: 0.9em; }\n"
        f".error {{ background: #fdecea; border-left: 4px solid {STATUS_COLOURS['failed']}; padding: 8px 12px; white-space: pre-wrap; }}"
    )
    return page(title, body, css)


# --- header and table -------------------------------------------------------------------------------------------------


def _header(run: dict, folder: str) -> str:
    span = f"{_e(run.get('started_at') or MISSING)} → {_e(run.get('finished_at') or MISSING)}"
    facts = [
        f"status {_badge(run.get('status'))}",
        f"duration {_e(_duration(run.get('seconds')))} ({span})",
        *_performance(run.get("performance_report"), folder),
        *([f"Dask dashboard: <code>{_e(run['dashboard'])}</code> ({DASHBOARD_NOTE})"] if run.get("dashboard") else []),
    ]
    items = "\n".join(f"<li>{fact}</li>" for fact in facts)
    error = f'<pre class="error">{_e(run["error"])}</pre>' if run.get("error") else ""
    return f"<h1>{_e(run.get('job') or 'run')} <small>{_e(run.get('date') or '')}</small></h1>\n<ul>\n{items}\n</ul>\n{error}"


def _badge(status: str | None) -> str:
    """Status in the colour a reader scans for: green, blue (reused), red, grey."""
    return f'<span class="badge" style="background: {_status_colour(status)}">{_e(status or "unknown")}</span>'


def _status_colour(status: str | None) -> str:
    return STATUS_COLOURS.get(status or "", UNKNOWN_COLOUR)


def _performance(report: str | None, folder: str) -> list[str]:
    """The performance report, linked when it is there to open: the dashboard's pictures of this run, kept after it.

    The dashboard closes with the run's cluster, so a link to it would be dead by the time anyone reads this page. The link
    is the file's path, percent-encoded, so no value in the manifest can make it a ``javascript:`` URL.
    """
    if not report:
        return []
    if not storage.is_file(storage.join(folder, report)):
        return [f"{PERFORMANCE}: {_e(report)} was not written next to this page"]
    return [f'<a href="{html.escape(quote(report), quote=True)}">{PERFORMANCE}</a> ({PERFORMANCE_WHAT})']


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _number(value: float | None, digits: int = 0) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}"


def _cache(cache: dict | None) -> str:
    """Hit rate with the counts behind it: 99% of 10 lookups is not 99% of 10 million."""
    hits, misses = (cache or {}).get("hits"), (cache or {}).get("misses")
    if hits is None or misses is None or hits + misses == 0:
        return MISSING
    return f"{100 * hits / (hits + misses):.1f}% ({hits:,} hits / {misses:,} misses)"


def _steps_table(steps: list[dict]) -> str:
    if not steps:
        return "<h2>Steps</h2>\n<p>The run has no steps.</p>"
    head = "".join(f"<th>{name}</th>" for name in STEP_COLUMNS)
    rows = "\n".join(_step_row(step) for step in steps)
    return f"<h2>Steps</h2>\n<table>\n<tr>{head}</tr>\n{rows}\n</table>"


def _step_row(step: dict) -> str:
    numbers = (
        _number(step.get("rows")),
        _number(step.get("rows_done")),
        _number(step.get("seconds"), 1),
        _number(step.get("throughput_rows_per_s"), 1),
        _cache(step.get("cache")),
    )
    return (
        f"<tr><td>{_e(step.get('name') or MISSING)}</td><td>{_e(step.get('command') or MISSING)}</td><td>{_badge(step.get('status'))}</td>"
        + "".join(f'<td class="num">{_e(text)}</td>' for text in numbers)
        + f"<td><code>{_e(step.get('output') or MISSING)}</code></td></tr>"
    )


# --- charts -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart: what it is called, how long it is, what is printed after it."""

    label: str
    value: float
    text: str
    colour: str
    tooltip: str


def _svg(width: float, height: float, parts: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(label)}">\n' + "\n".join(parts) + "\n</svg>"
    )


def _rect(x: float, y: float, width: float, height: float, colour: str, tooltip: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}"><title>{_e(tooltip)}</title></rect>'


def _hbars(bars: list[Bar], label: str) -> str:
    """Horizontal bars scaled to the longest, labels on the left: the shape both topic sizes and step seconds need."""
    longest = max(bar.value for bar in bars) or 1
    step = BAR_HEIGHT + BAR_GAP
    parts = []
    for i, bar in enumerate(bars):
        y, width = i * step, BAR_WIDTH * bar.value / longest
        parts += [
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 5}" text-anchor="end">{_e(bar.label)}</text>',
            _rect(LABEL_WIDTH, y, width, BAR_HEIGHT, bar.colour, bar.tooltip),
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + BAR_HEIGHT - 5}">{_e(bar.text)}</text>',
        ]
    return _svg(LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH, len(bars) * step, parts, label)


def _step_charts(step: dict) -> list[str]:
    name = step.get("name") or "step"
    charts = []
    if step.get("score_histogram"):
        charts.append(f"<h2>{_e(name)}: match scores</h2>\n{_histogram(step['score_histogram'])}")
    if step.get("topic_sizes"):
        charts.append(_topics_chart(name, step["topic_sizes"]))
    return charts


def _histogram(histogram: dict) -> str:
    """Vertical bars, one per bin, with score edges below and round counts on the left."""
    edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
    if not counts or len(edges) != len(counts) + 1:
        return f"<p>No score histogram to draw ({len(counts)} counts for {len(edges)} edges).</p>"
    plot_width, plot_height = HIST_WIDTH - HIST_LEFT - 10, HIST_HEIGHT - HIST_BOTTOM - HIST_TOP
    step = nice_step(max(counts), HIST_COUNT_TICKS, whole=True)
    scale = ticks(0, max(max(counts), 1), step)  # the axis runs to the first round count at or above the tallest bar
    base, top, bin_width = HIST_TOP + plot_height, scale[-1], plot_width / len(counts)
    parts = _count_scale(scale, step, plot_width, plot_height)
    for i, count in enumerate(counts):
        height, tooltip = plot_height * count / top, f"{edges[i]:g}–{edges[i + 1]:g}: {count:,}"
        parts.append(_rect(HIST_LEFT + i * bin_width, base - height, bin_width - 1, height, SCORE_COLOUR, tooltip))
    every = -(-len(counts) // HIST_TICKS)  # at most HIST_TICKS + 1 edge labels, so they never overlap
    parts += [
        f'<text x="{HIST_LEFT + i * bin_width:.1f}" y="{base + 16}" text-anchor="middle">{edges[i]:g}</text>'
        for i in range(0, len(edges), every)
    ]
    return _svg(HIST_WIDTH, HIST_HEIGHT, parts + _histogram_axes(plot_width, plot_height), "histogram of match scores")


def _count_scale(scale: list[float], step: float, plot_width: float, plot_height: float) -> list[str]:
    """A light line across the plot and a number on the left at each round count, under the bars."""
    parts = []
    for value in scale:
        y = HIST_TOP + plot_height * (1 - value / scale[-1])
        parts += [
            f'<line x1="{HIST_LEFT}" y1="{y:.1f}" x2="{HIST_LEFT + plot_width}" y2="{y:.1f}" stroke="#e6e6e6"/>',
            f'<text x="{HIST_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick_text(value, step)}</text>',
        ]
    return parts


def _histogram_axes(plot_width: float, plot_height: float) -> list[str]:
    """The two axis lines and the axis titles."""
    base, middle = HIST_TOP + plot_height, HIST_TOP + plot_height / 2
    return [
        f'<line x1="{HIST_LEFT}" y1="{base}" x2="{HIST_LEFT + plot_width}" y2="{base}" stroke="#444"/>',
        f'<line x1="{HIST_LEFT}" y1="{HIST_TOP}" x2="{HIST_LEFT}" y2="{base}" stroke="#444"/>',
        f'<text x="{HIST_LEFT + plot_width / 2:.1f}" y="{HIST_HEIGHT - 6}" text-anchor="middle">match score</text>',
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})">count</text>',
    ]


def _topics_chart(name: str, topic_sizes: list[dict]) -> str:
    """The largest topics and the outliers, largest first, outliers in grey among them, so a swollen outlier bucket stands out.

    Topics are counted apart from the outliers, as in the topics table and the plot.
    """
    ranked = sorted(topic_sizes, key=lambda t: (-t["size"], t["topic"]))
    real = [t for t in ranked if t["topic"] != OUTLIER]
    outliers = next((t["size"] for t in ranked if t["topic"] == OUTLIER), None)
    kept = {t["topic"] for t in real[:MAX_TOPIC_BARS]} | {OUTLIER}
    bars = [_topic_bar(topic) for topic in ranked if topic["topic"] in kept]
    caption = topic_counts(len(real), outliers, MAX_TOPIC_BARS)
    return f"<h2>{_e(name)}: topic sizes ({_e(caption)})</h2>\n{_hbars(bars, 'topic sizes')}"


def _topic_bar(topic: dict) -> Bar:
    words = [str(word) for word in topic.get("keywords") or []]
    number, size = topic["topic"], topic["size"]
    if number == OUTLIER:
        return Bar("outliers", size, f"{size:,}", OUTLIER_COLOUR, f"outliers: {', '.join(words)} ({size:,} documents)")
    label = f"{number} · {' '.join(words[:LABEL_WORDS])}" if words else str(number)
    return Bar(label, size, f"{size:,}", TOPIC_COLOUR, f"topic {number}: {', '.join(words)} ({size:,} documents)")


def _seconds_chart(steps: list[dict]) -> str:
    """Where the night went: one bar per timed step, coloured by its status."""
    bars = [_seconds_bar(step) for step in steps if step.get("seconds") is not None]
    return f"<h2>Seconds per step</h2>\n{_hbars(bars, 'seconds per step')}" if bars else ""


def _seconds_bar(step: dict) -> Bar:
    name, status, seconds = step.get("name") or MISSING, step.get("status") or "unknown", step["seconds"]
    return Bar(name, seconds, _duration(seconds), _status_colour(status), f"{name} ({status}): {seconds:,.1f} s")
