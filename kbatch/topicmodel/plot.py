"""Pictures of a topic model: topic sizes as bars and a 2-D PCA map of documents coloured by topic.

The map keeps one scale on both axes (a distance means the same across and up), draws outliers
faint underneath, and places each topic's label on a white box where it covers no other label
(:mod:`kbatch.topicmodel.labels`), in the HTML page and the PNG (:mod:`kbatch.topicmodel.plot_png`) alike.

``.html`` is one self-contained file (inline SVG and a table, no scripts, no network), so it opens
anywhere and Korean renders with the reader's system fonts. ``.png`` needs matplotlib and a Korean
font, which the ``plot`` extra brings (koreanize-matplotlib bundles NanumGothic).
"""

from __future__ import annotations

import html
import os
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kbatch.errors import InputError
from kbatch.html import OUTLIER, OUTLIER_COLOUR, nice_step, page, tick_text, ticks
from kbatch.io import storage
from kbatch.topicmodel.labels import Box, Label, labelled
from kbatch.topicmodel.plot_data import OUTLIER_OPACITY, TOOLTIP_CHARS, Topic, drawable_points, label_anchors, shown_bars, table_topics
from kbatch.topicmodel.plot_png import write_png


def write_plot(path: str | os.PathLike[str], topics: pd.DataFrame, points: pd.DataFrame, title: str) -> str:
    """Draw ``topics`` (topic, size, keywords) and ``points`` (x, y: a 2-D PCA projection; topic; optional text) to ``path``
    (local, or a URL: one upload, complete or absent).

    ``points`` should be a sample (a few thousand rows): every point becomes one circle.
    The suffix picks the format: ``.html`` (no dependencies) or ``.png`` (matplotlib).
    """
    target = storage.location(path)
    suffix = storage.suffix_of(target)
    if suffix not in (".html", ".png"):
        raise InputError(f"`plot` must end in .html or .png, got {os.fspath(path)!r}")
    table = table_topics(topics)
    sample = drawable_points(points)
    storage.make_dirs(storage.parent_of(target))
    with storage.atomic_write(target) as handle:
        if suffix == ".html":
            handle.write(_html(table, sample, title).encode("utf-8"))
        else:
            write_png(handle, table, sample, title)
    return target


# --- HTML -------------------------------------------------------------------------------------------------------------

BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, BAR_WIDTH = 20, 6, 320, 480
MAP_WIDTH, MAP_HEIGHTS, MAP_PAD, MAP_LEFT, MAP_BOTTOM, MAP_TICKS = 760, (360, 760), 14, 56, 44, 8
RADIUS, OUTLIER_RADIUS = 3, 2
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
    shown, caption = shown_bars(topics)
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
    medians = label_anchors(topics, points)
    labels = labelled([t for t, _, _ in medians], [frame.px(x, y) for _, x, y in medians], _svg_label_size, frame.area)
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
