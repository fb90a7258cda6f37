"""Pictures of a topic model: topic sizes as bars and a 2-D PCA map of documents coloured by topic.

The map keeps one scale on both axes (a distance means the same across and up), draws outliers
faint underneath, and places each topic's label on a white box where it covers no other label
(:func:`place_labels`), in the HTML page and the PNG alike.

``.html`` is one self-contained file (inline SVG and a table, no scripts, no network), so it opens
anywhere and Korean renders with the reader's system fonts. ``.png`` needs matplotlib and a Korean
font, which the ``plot`` extra brings (koreanize-matplotlib bundles NanumGothic).
"""

from __future__ import annotations

import html
import importlib.util
import math
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from kbatch.errors import InputError
from kbatch.html import OUTLIER, OUTLIER_COLOUR, nice_step, page, tick_text, ticks, topic_counts
from kbatch.io.writer import atomic_path

# 20 colours that stay apart from each other (after Sasha Trubetskoy's list, less his grey, the outliers' colour, and his
# beige, which vanishes on the map's background); topics past 20 cycle.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#800000",
    "#808000", "#000075", "#ffe119", "#bfef45", "#fabed4", "#dcbeff", "#aaffc3", "#ffd8b1", "#000000", "#5e3c99",
)  # fmt: skip
MAX_BARS = 40  # more bars than this are unreadable; the HTML table still lists every topic
LABEL_WORDS = 3
TOOLTIP_CHARS = 200


@dataclass(frozen=True)
class Topic:
    """One row of the topics table, with the label and colour both pictures use."""

    topic: int
    size: int
    keywords: list[str]
    colour: str

    def label(self, words: bool = True) -> str:
        if self.topic == OUTLIER:
            return "outliers"
        if not words or not self.keywords:
            return str(self.topic)
        return f"{self.topic} · {' '.join(self.keywords[:LABEL_WORDS])}"


def write_plot(path: str | os.PathLike[str], topics: pd.DataFrame, points: pd.DataFrame, title: str) -> str:
    """Draw ``topics`` (topic, size, keywords) and ``points`` (x, y: a 2-D PCA projection; topic; optional text) to ``path``.

    ``points`` should be a sample (a few thousand rows): every point becomes one circle.
    The suffix picks the format: ``.html`` (no dependencies) or ``.png`` (matplotlib).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".html", ".png"):
        raise InputError(f"--plot must end in .html or .png, got {os.fspath(path)!r}")
    table = _topics(topics)
    sample = _points(points)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        if suffix == ".html":
            tmp.write_text(_html(table, sample, title), encoding="utf-8")
        else:
            _png(tmp, table, sample, title)
    return str(target)


def _topics(frame: pd.DataFrame) -> list[Topic]:
    """Topics largest first; colours go by rank so the biggest topics get the most distinct ones."""
    rows = frame.sort_values(["size", "topic"], ascending=[False, True])
    found, rank = [], 0
    for topic, size, keywords in zip(rows["topic"], rows["size"], rows["keywords"], strict=True):
        colour = OUTLIER_COLOUR if topic == OUTLIER else PALETTE[rank % len(PALETTE)]
        rank += topic != OUTLIER
        found.append(Topic(int(topic), int(size), _words(keywords), colour))
    return found


def _words(keywords) -> list[str]:
    """Keywords as a list of str, whether they came as a list, a NumPy array (from Parquet) or a missing value."""
    if keywords is None or (isinstance(keywords, float) and math.isnan(keywords)):
        return []
    return [str(word) for word in keywords]


def _points(frame: pd.DataFrame) -> pd.DataFrame:
    """Points with finite coordinates, outliers first so real topics are drawn over them."""
    columns = ["x", "y", "topic", *(["text"] if "text" in frame.columns else [])]
    sample = frame[columns].copy()
    sample["x"] = sample["x"].astype(float)
    sample["y"] = sample["y"].astype(float)
    sample = sample[np.isfinite(sample["x"]) & np.isfinite(sample["y"])]
    return sample.assign(_front=sample["topic"] != OUTLIER).sort_values("_front", kind="stable").drop(columns="_front")


def _medians(topics: list[Topic], points: pd.DataFrame) -> list[tuple[Topic, float, float]]:
    """Where each topic's label wants to go: the median of its points (outliers get no label)."""
    grouped = points.groupby("topic")[["x", "y"]].median()
    return [(t, grouped.at[t.topic, "x"], grouped.at[t.topic, "y"]) for t in topics if t.topic != OUTLIER and t.topic in grouped.index]


def _shown(topics: list[Topic]) -> tuple[list[Topic], str]:
    """The bars: the largest ``MAX_BARS`` topics and the outliers, with a caption that counts them apart."""
    real = [t for t in topics if t.topic != OUTLIER]
    outliers = next((t for t in topics if t.topic == OUTLIER), None)
    kept = {t.topic for t in real[:MAX_BARS]} | {OUTLIER}
    caption = topic_counts(len(real), outliers and outliers.size, MAX_BARS)
    return [t for t in topics if t.topic in kept], caption


# --- label placement --------------------------------------------------------------------------------------------------

RINGS, DIRECTIONS = 4, 16  # how far (in label sizes) and in how many directions a label may move from its anchor


@dataclass(frozen=True)
class Box:
    """A label's rectangle, in pixels, on either picture."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def meets(self, other: Box) -> bool:
        """Whether the two overlap (touching edges do not count)."""
        return self.left < other.right and other.left < self.right and self.top < other.bottom and other.top < self.bottom

    def inside(self, bounds: Box) -> bool:
        return bounds.left <= self.left and self.right <= bounds.right and bounds.top <= self.top and self.bottom <= bounds.bottom

    def pushed_into(self, bounds: Box) -> Box:
        """The same box moved the least to lie inside ``bounds`` (labels near the edge stay near their anchor)."""
        left = min(max(self.left, bounds.left), bounds.right - self.width)
        top = min(max(self.top, bounds.top), bounds.bottom - self.height)
        return Box(left, top, self.width, self.height)

    def nearest(self, x: float, y: float) -> tuple[float, float]:
        """The point of the box closest to (x, y): where a leader line from an anchor should end."""
        return min(max(x, self.left), self.right), min(max(y, self.top), self.bottom)


def place_labels(
    anchors: list[tuple[float, float]], sizes: list[tuple[float, float]], bounds: Box, taken: list[Box] | None = None
) -> list[Box | None]:
    """Put each label, in order, on the free spot nearest its anchor; ``None`` when none within reach is free.

    Greedy, so the first labels (the largest topics) get the best spots, and no label covers
    another or one in ``taken``: labels that overlap cannot be read.
    """
    placed = list(taken or [])
    boxes: list[Box | None] = []
    for (x, y), (width, height) in zip(anchors, sizes, strict=True):
        spots = (box for box in _spots(x, y, width, height, bounds) if box.inside(bounds))
        box = next((box for box in spots if not any(box.meets(other) for other in placed)), None)
        if box is not None:
            placed.append(box)
        boxes.append(box)
    return boxes


def _spots(x: float, y: float, width: float, height: float, bounds: Box) -> Iterator[Box]:
    """Candidate boxes nearest first: centred on the anchor, then on rings around it measured in label sizes."""
    yield Box(x - width / 2, y - height / 2, width, height).pushed_into(bounds)
    for ring in range(1, RINGS + 1):
        for k in range(DIRECTIONS):
            angle = 2 * math.pi * k / DIRECTIONS
            cx, cy = x + ring * math.sin(angle) * width / 2, y - ring * math.cos(angle) * height
            yield Box(cx - width / 2, cy - height / 2, width, height).pushed_into(bounds)


@dataclass(frozen=True)
class Label:
    """A topic's label as placed: its text, its box and the anchor (the topic's median) it names."""

    topic: Topic
    text: str
    box: Box
    anchor: tuple[float, float]

    def leader(self) -> tuple[float, float] | None:
        """Where a line from the anchor meets the box, when the label had to move off its anchor."""
        end = self.box.nearest(*self.anchor)
        return None if end == self.anchor else end


def _labelled(
    topics: list[Topic], anchors: list[tuple[float, float]], size: Callable[[str], tuple[float, float]], bounds: Box, words: bool = True
) -> list[Label]:
    """Each topic's label where it fits: its words, else its number alone (the bars beside say the words), else left off.

    ``size`` measures a label's box in the picture's pixels.
    """
    full = place_labels(anchors, [size(t.label(words)) for t in topics], bounds)
    missing = [i for i, box in enumerate(full) if box is None]
    taken = [box for box in full if box is not None]
    short = place_labels([anchors[i] for i in missing], [size(topics[i].label(False)) for i in missing], bounds, taken)
    found = {i: (topics[i].label(words), box) for i, box in enumerate(full) if box is not None}
    found |= {i: (topics[i].label(False), box) for i, box in zip(missing, short, strict=True) if box is not None}
    return [Label(topics[i], *found[i], anchors[i]) for i in sorted(found)]


# --- HTML -------------------------------------------------------------------------------------------------------------

BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, BAR_WIDTH = 20, 6, 320, 480
MAP_WIDTH, MAP_HEIGHTS, MAP_PAD, MAP_LEFT, MAP_BOTTOM, MAP_TICKS = 760, (360, 760), 14, 56, 44, 8
RADIUS, OUTLIER_RADIUS, OUTLIER_OPACITY = 3, 2, 0.35
FONT_PX, LABEL_PAD_X, LABEL_HEIGHT = 12, 4, 18
# Advances in ems, a little generous, of a Hangul (or other wide) character, a space and the rest, in bold sans fonts
# (Noto Sans CJK, Apple SD Gothic Neo, Malgun Gothic); measured in Chromium by test_topic_plot.py.
WIDE_EM, SPACE_EM, NARROW_EM = 0.94, 0.32, 0.62
PROJECTION = (
    "A 2-D PCA projection of the documents' vectors, with the same scale on both axes: documents far apart here are far "
    "apart in meaning, documents close here need not be close. Faint grey dots, drawn underneath, are outliers."
)


def _html(topics: list[Topic], points: pd.DataFrame, title: str) -> str:
    e = html.escape
    body = f"{_bars_svg(topics)}\n{_map_svg(topics, points)}\n{_table(topics)}" if topics else "<p>There are no topics.</p>"
    css = f"""svg text {{ font-family: inherit; font-size: 13px; }}
svg .label text {{ font-size: {FONT_PX}px; font-weight: bold; }}
svg .tick, svg .axis {{ font-size: 11px; fill: #555; }}
p.note {{ color: #555; max-width: {MAP_LEFT + MAP_WIDTH}px; }}"""
    return page(title, f"<h1>{e(title)}</h1>\n{body}", css)


def _bars_svg(topics: list[Topic]) -> str:
    shown, caption = _shown(topics)
    largest = max(t.size for t in shown) or 1
    step = BAR_HEIGHT + BAR_GAP
    rows = []
    for i, t in enumerate(shown):
        y = i * step
        width = BAR_WIDTH * t.size / largest
        rows.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 5}" text-anchor="end">{html.escape(t.label())}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{t.colour}">'
            f"<title>{html.escape(_topic_line(t, t.topic))} ({t.size:,} documents)</title></rect>"
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + BAR_HEIGHT - 5}">{t.size:,}</text>'
        )
    width, height = LABEL_WIDTH + BAR_WIDTH + 80, len(shown) * step
    return (
        f"<h2>Topic sizes ({html.escape(caption)})</h2>\n"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">\n'
        + "\n".join(rows)
        + "\n</svg>"
    )


@dataclass(frozen=True)
class Frame:
    """The map's plot area in pixels and the one scale both axes share, so a distance on the map is one in the projection."""

    area: Box
    centre: tuple[float, float]
    scale: float

    def px(self, x: float, y: float) -> tuple[float, float]:
        """Pixel position of a data point, +y up."""
        return (self.area.left + self.area.width / 2 + (x - self.centre[0]) * self.scale,
                self.area.top + self.area.height / 2 - (y - self.centre[1]) * self.scale)  # fmt: skip

    def span(self, axis: int) -> tuple[float, float]:
        """The data values at the two edges of the plot area along ``axis`` (0: x, 1: y)."""
        half = (self.area.width if axis == 0 else self.area.height) / 2 / self.scale
        return self.centre[axis] - half, self.centre[axis] + half


def _frame(points: pd.DataFrame) -> Frame:
    """A plot area as wide as ``MAP_WIDTH`` and as tall as the points need, within ``MAP_HEIGHTS``."""
    low, high = points[["x", "y"]].min().to_numpy(), points[["x", "y"]].max().to_numpy()
    span_x, span_y = np.where(high - low > 1e-12, high - low, 1.0)  # all points on one spot (or line): a unit square around it
    inner = MAP_WIDTH - 2 * MAP_PAD
    height = min(max(inner * span_y / span_x, MAP_HEIGHTS[0]), MAP_HEIGHTS[1]) + 2 * MAP_PAD
    scale = min(inner / span_x, (height - 2 * MAP_PAD) / span_y)
    centre = (low + high) / 2
    return Frame(Box(MAP_LEFT, 0, MAP_WIDTH, height), (float(centre[0]), float(centre[1])), float(scale))


def _map_svg(topics: list[Topic], points: pd.DataFrame) -> str:
    if points.empty:
        return "<h2>Documents</h2>\n<p>There are no points to draw.</p>"
    frame = _frame(points)
    labels, left_off = _labelled_svg(topics, points, frame)
    width, height, area = MAP_LEFT + MAP_WIDTH, frame.area.height + MAP_BOTTOM, frame.area
    parts = [
        f'<rect x="{area.left}" y="{area.top}" width="{area.width}" height="{area.height:.1f}" fill="#fafafa" stroke="#ccc"/>',
        *_axes_svg(frame),
        *_circles(topics, points, frame),
        *labels,
    ]
    note = f" The labels of {left_off} small topics did not fit; the bars above list them." if left_off else ""
    return (
        f'<h2>Documents ({len(points):,} shown, coloured by topic)</h2>\n<p class="note">{PROJECTION}{note}</p>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.1f}">\n'
        + "\n".join(parts)
        + "\n</svg>"
    )


def _axes_svg(frame: Frame) -> list[str]:
    """Grid lines at round values, the same step on both axes, and the axis titles: a PCA map has no other units."""
    area, middle = frame.area, frame.area.top + frame.area.height / 2
    step = nice_step(max(high - low for low, high in (frame.span(0), frame.span(1))), MAP_TICKS)
    return [
        *_grid(frame, 0, step),
        *_grid(frame, 1, step),
        f'<text class="axis" x="{area.left + area.width / 2:.1f}" y="{area.bottom + 34:.1f}" text-anchor="middle">PCA 1</text>',
        f'<text class="axis" x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})">PCA 2</text>',
    ]


def _grid(frame: Frame, axis: int, step: float) -> list[str]:
    """Light lines across the plot area at each round value of ``axis`` inside it, numbered outside it."""
    area, (low, high) = frame.area, frame.span(axis)
    parts = []
    for value in (v for v in ticks(low, high, step) if low <= v <= high):
        text = tick_text(value, step)
        if axis == 0:
            x = frame.px(value, 0)[0]
            parts += [f'<line x1="{x:.1f}" y1="{area.top}" x2="{x:.1f}" y2="{area.bottom:.1f}" stroke="#e6e6e6"/>',
                      f'<text class="tick" x="{x:.1f}" y="{area.bottom + 14:.1f}" text-anchor="middle">{text}</text>']  # fmt: skip
        else:
            y = frame.px(0, value)[1]
            parts += [f'<line x1="{area.left}" y1="{y:.1f}" x2="{area.right}" y2="{y:.1f}" stroke="#e6e6e6"/>',
                      f'<text class="tick" x="{area.left - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>']  # fmt: skip
    return parts


def _circles(topics: list[Topic], points: pd.DataFrame, frame: Frame) -> list[str]:
    """One dot per document; outliers small and faint, already first in ``points`` so topics are drawn over them."""
    by_topic = {t.topic: t for t in topics}
    texts = points["text"] if "text" in points.columns else [None] * len(points)
    circles = []
    for x, y, topic, text in zip(points["x"], points["y"], points["topic"], texts, strict=True):
        t = by_topic.get(topic)
        px, py = frame.px(x, y)
        faint = topic == OUTLIER
        circles.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{OUTLIER_RADIUS if faint else RADIUS}" fill="{t.colour if t else OUTLIER_COLOUR}" '
            f'fill-opacity="{OUTLIER_OPACITY if faint else 0.8}"><title>{html.escape(_point_tooltip(t, topic, text))}</title></circle>'
        )
    return circles


def _labelled_svg(topics: list[Topic], points: pd.DataFrame, frame: Frame) -> tuple[list[str], int]:
    """Labels on white boxes edged in their topic's colour, over lines to the anchors of those that moved; and how many did not fit."""
    medians = _medians(topics, points)
    labels = _labelled([t for t, _, _ in medians], [frame.px(x, y) for _, x, y in medians], _svg_label_size, frame.area)
    lines = [
        f'<line x1="{label.anchor[0]:.1f}" y1="{label.anchor[1]:.1f}" x2="{end[0]:.1f}" y2="{end[1]:.1f}" stroke="{label.topic.colour}" '
        f'stroke-width="1.5"/><circle cx="{label.anchor[0]:.1f}" cy="{label.anchor[1]:.1f}" r="2.5" fill="#222"/>'
        for label in labels
        if (end := label.leader()) is not None
    ]
    boxes = [_svg_label(label) for label in labels]
    return lines + boxes, len(medians) - len(labels)


def _svg_label(label: Label) -> str:
    box = label.box
    return (
        f'<g class="label"><rect x="{box.left:.1f}" y="{box.top:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" rx="3" '
        f'fill="#fff" fill-opacity="0.9" stroke="{label.topic.colour}" stroke-width="1.5"/>'
        f'<text x="{box.left + box.width / 2:.1f}" y="{box.top + box.height / 2:.1f}" text-anchor="middle" dominant-baseline="central" '
        f'textLength="{box.width - 2 * LABEL_PAD_X:.1f}" lengthAdjust="spacingAndGlyphs">{html.escape(label.text)}</text></g>'
    )


def _svg_label_size(text: str) -> tuple[float, float]:
    """A label's box estimated from its characters; the text is then fitted to it (``textLength``), whatever the reader's font."""
    ems = sum(WIDE_EM if unicodedata.east_asian_width(char) in "WF" else SPACE_EM if char == " " else NARROW_EM for char in text)
    return ems * FONT_PX + 2 * LABEL_PAD_X, LABEL_HEIGHT


def _topic_line(t: Topic | None, topic: int) -> str:
    """What a tooltip says about a topic: its number (or "outliers") and all its keywords."""
    if t is None:
        return f"topic {topic}"
    head = "outliers" if t.topic == OUTLIER else f"topic {t.topic}"
    return f"{head}: {', '.join(t.keywords)}" if t.keywords else head


def _point_tooltip(t: Topic | None, topic: int, text: str | None) -> str:
    if not isinstance(text, str) or not text:
        return _topic_line(t, topic)
    short = text if len(text) <= TOOLTIP_CHARS else text[: TOOLTIP_CHARS - 1] + "…"
    return f"{_topic_line(t, topic)}\n{short}"


def _table(topics: list[Topic]) -> str:
    total = sum(t.size for t in topics) or 1
    rows = "\n".join(
        f'<tr><td class="num">{"outliers" if t.topic == OUTLIER else t.topic}</td><td class="num">{t.size:,}</td>'
        f'<td class="num">{100 * t.size / total:.1f}%</td><td>{html.escape(", ".join(t.keywords))}</td></tr>'
        for t in topics
    )
    return f"<h2>Topics</h2>\n<table>\n<tr><th>topic</th><th>size</th><th>share</th><th>keywords</th></tr>\n{rows}\n</table>"


# --- PNG --------------------------------------------------------------------------------------------------------------

PNG_DPI, PNG_FONT, PNG_LABEL_PAD = 110, 9, 0.3  # PNG_LABEL_PAD: the label box's margin, in font sizes


def _png(path: Path, topics: list[Topic], points: pd.DataFrame, title: str) -> None:
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("--plot FILE.png needs matplotlib: pip install 'kbatch[plot]'") from None
    font = _korean_font()
    words = font is not None
    if not words:
        print("kbatch: warning: no Korean font for matplotlib (pip install 'kbatch[plot]'); PNG topics labelled by number", file=sys.stderr)
    rc = {"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"], "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        shown, _ = _shown(topics)
        figure = Figure(figsize=(18, max(8.0, 0.32 * len(shown) + 2)), dpi=PNG_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        figure.suptitle(title if words or title.isascii() else "topics", fontsize=15)
        if topics:
            bars, scatter = figure.subplots(1, 2, width_ratios=[1, 1.25])
            _png_bars(bars, topics, words)
            _png_map(scatter, topics, points)
            if not points.empty:
                figure.draw_without_rendering()  # lay the figure out once, then keep it, so labels are placed in final pixels
                figure.set_layout_engine("none")
                _png_labels(scatter, topics, points, words)
        else:
            figure.text(0.5, 0.5, "There are no topics.", ha="center", va="center", fontsize=18)
        figure.savefig(path, format="png", dpi=PNG_DPI)


def _png_bars(ax, topics: list[Topic], words: bool) -> None:
    shown, caption = _shown(topics)
    rows = range(len(shown))
    ax.barh(rows, [t.size for t in shown], color=[t.colour for t in shown])
    ax.set_yticks(rows, [t.label(words) for t in shown])
    ax.invert_yaxis()
    ax.bar_label(ax.containers[0], labels=[f"{t.size:,}" for t in shown], padding=3, fontsize=9)
    ax.set_title(f"Topic sizes ({caption})")
    ax.set_xlabel("documents")
    ax.spines[["top", "right"]].set_visible(False)


def _png_map(ax, topics: list[Topic], points: pd.DataFrame) -> None:
    """Outliers small and faint underneath, topics over them, the same scale on both PCA axes."""
    ax.set_title(f"Documents ({len(points):,} shown; 2-D PCA, same scale on both axes; faint grey: outliers)")
    if points.empty:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, "There are no points to draw.", ha="center", va="center", transform=ax.transAxes)
        return
    colours = {t.topic: t.colour for t in topics}
    faint = (points["topic"] == OUTLIER).to_numpy()
    ax.scatter(points["x"][faint], points["y"][faint], s=5, c=OUTLIER_COLOUR, alpha=OUTLIER_OPACITY, linewidths=0, zorder=1)
    front = points[~faint]
    ax.scatter(front["x"], front["y"], s=9, c=[colours.get(topic, OUTLIER_COLOUR) for topic in front["topic"]], alpha=0.8,
               linewidths=0, zorder=2)  # fmt: skip
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("PCA 1")
    ax.set_ylabel("PCA 2")
    ax.grid(color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def _png_labels(ax, topics: list[Topic], points: pd.DataFrame, words: bool) -> None:
    """Labels on white boxes edged in their topic's colour, placed in display pixels, over lines to the anchors of those that moved."""
    renderer = ax.figure.canvas.get_renderer()
    ax.set_autoscale_on(False)  # the leader lines must not move the limits the labels were placed in
    medians = _medians(topics, points)
    area = ax.get_window_extent(renderer)
    pad = PNG_LABEL_PAD * PNG_FONT * PNG_DPI / 72

    def size(text: str) -> tuple[float, float]:
        probe = ax.text(0, 0, text, fontsize=PNG_FONT, fontweight="bold")
        extent = probe.get_window_extent(renderer)
        probe.remove()
        return extent.width + 2 * pad, extent.height + 2 * pad

    anchors = [tuple(ax.transData.transform((x, y))) for _, x, y in medians]
    to_data = ax.transData.inverted()
    for label in _labelled([t for t, _, _ in medians], anchors, size, Box(area.x0, area.y0, area.width, area.height), words):
        if (end := label.leader()) is not None:
            (x0, y0), (x1, y1) = to_data.transform([label.anchor, end])
            ax.plot([x0, x1], [y0, y1], color=label.topic.colour, linewidth=1.5, zorder=3)
            ax.plot([x0], [y0], "o", color="#222", markersize=3, zorder=3)
        box = label.box
        ax.text(*to_data.transform((box.left + box.width / 2, box.top + box.height / 2)), label.text, ha="center", va="center",
                fontsize=PNG_FONT, fontweight="bold", zorder=4,
                bbox={"boxstyle": f"round,pad={PNG_LABEL_PAD}", "facecolor": "white", "alpha": 0.9, "edgecolor": label.topic.colour,
                      "linewidth": 1.5})  # fmt: skip


@cache
def _korean_font() -> str | None:
    """A font family that has Hangul: koreanize-matplotlib's NanumGothic, else any installed one, else ``None``."""
    from matplotlib import font_manager

    bundled = _bundled_nanum()
    if bundled is not None:
        for weight in bundled.parent.glob("NanumGothic*.ttf"):  # the bold file too, for the map's labels
            font_manager.fontManager.addfont(str(weight))
        return font_manager.FontProperties(fname=str(bundled)).get_name()
    return next((entry.name for entry in font_manager.fontManager.ttflist if _has_hangul(entry.fname)), None)


def _bundled_nanum() -> Path | None:
    """koreanize-matplotlib's font file, found without importing the package (its import changes rcParams and needs distutils)."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    for folder in (spec and spec.submodule_search_locations) or []:
        font = Path(folder) / "fonts" / "NanumGothic.ttf"
        if font.is_file():
            return font
    return None


def _has_hangul(fname: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        return FT2Font(fname).get_char_index(ord("한")) != 0
    except (OSError, RuntimeError):
        return False
