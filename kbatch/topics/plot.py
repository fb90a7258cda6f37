"""Pictures of a topic model: topic sizes as bars and a 2-D map of documents coloured by topic.

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
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from kbatch.errors import InputError
from kbatch.html import OUTLIER, OUTLIER_COLOUR, page
from kbatch.io.writer import atomic_path

# 20 colours that stay apart from each other (after Sasha Trubetskoy's list); topics past 20 cycle.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#800000",
    "#808000", "#000075", "#ffe119", "#bfef45", "#fabed4", "#dcbeff", "#aaffc3", "#ffd8b1", "#a9a9a9", "#fffac8",
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
    """Draw ``topics`` (topic, size, keywords) and ``points`` (x, y, topic, optional text) to ``path``.

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
    """Where each topic's label goes: the median of its points (outliers get no label)."""
    grouped = points.groupby("topic")[["x", "y"]].median()
    return [(t, grouped.at[t.topic, "x"], grouped.at[t.topic, "y"]) for t in topics if t.topic != OUTLIER and t.topic in grouped.index]


def _shown(topics: list[Topic]) -> tuple[list[Topic], str]:
    """The topics that get a bar, and a caption that says when some were left out."""
    if len(topics) <= MAX_BARS:
        return topics, f"{len(topics)} topics"
    return topics[:MAX_BARS], f"largest {MAX_BARS} of {len(topics)} topics"


# --- HTML -------------------------------------------------------------------------------------------------------------

BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, BAR_WIDTH = 20, 6, 320, 480
MAP_SIZE, MAP_PAD, RADIUS = 760, 24, 3


def _html(topics: list[Topic], points: pd.DataFrame, title: str) -> str:
    e = html.escape
    body = f"{_bars_svg(topics)}\n{_map_svg(topics, points)}\n{_table(topics)}" if topics else "<p>There are no topics.</p>"
    css = """svg text { font-family: inherit; font-size: 13px; }
svg .label { font-size: 12px; font-weight: bold; paint-order: stroke; stroke: #fff; stroke-width: 3px; }"""
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


def _map_svg(topics: list[Topic], points: pd.DataFrame) -> str:
    if points.empty:
        return "<h2>Documents</h2>\n<p>There are no points to draw.</p>"
    by_topic = {t.topic: t for t in topics}
    to_px = _scaler(points)
    texts = points["text"] if "text" in points.columns else [None] * len(points)
    circles = []
    for x, y, topic, text in zip(points["x"], points["y"], points["topic"], texts, strict=True):
        t = by_topic.get(topic)
        px, py = to_px(x, y)
        circles.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{RADIUS}" fill="{t.colour if t else OUTLIER_COLOUR}" fill-opacity="0.7">'
            f"<title>{html.escape(_point_tooltip(t, topic, text))}</title></circle>"
        )
    labels = []
    for t, x, y in _medians(topics, points):
        px, py = to_px(x, y)
        labels.append(f'<text class="label" x="{px:.1f}" y="{py:.1f}" text-anchor="middle">{html.escape(t.label())}</text>')
    return (
        f"<h2>Documents ({len(points):,} shown, coloured by topic)</h2>\n"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{MAP_SIZE}" height="{MAP_SIZE}" viewBox="0 0 {MAP_SIZE} {MAP_SIZE}">\n'
        f'<rect width="{MAP_SIZE}" height="{MAP_SIZE}" fill="#fafafa" stroke="#ddd"/>\n' + "\n".join(circles + labels) + "\n</svg>"
    )


def _scaler(points: pd.DataFrame):
    """Maps data coordinates onto the whole square, +y up: a 2-D embedding's axes carry no units worth keeping."""
    low_x, low_y = points["x"].min(), points["y"].min()
    inner = MAP_SIZE - 2 * MAP_PAD
    scale_x = inner / ((points["x"].max() - low_x) or 1.0)
    scale_y = inner / ((points["y"].max() - low_y) or 1.0)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return MAP_PAD + (x - low_x) * scale_x, MAP_SIZE - MAP_PAD - (y - low_y) * scale_y

    return to_px


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


def _png(path: Path, topics: list[Topic], points: pd.DataFrame, title: str) -> None:
    try:
        import matplotlib
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
        figure = Figure(figsize=(18, max(7.0, 0.32 * len(shown) + 2)), layout="constrained")
        figure.suptitle(title if words or title.isascii() else "topics", fontsize=15)
        if topics:
            bars, scatter = figure.subplots(1, 2, width_ratios=[1, 1.25])
            _png_bars(bars, topics, words)
            _png_map(scatter, topics, points, words)
        else:
            figure.text(0.5, 0.5, "There are no topics.", ha="center", va="center", fontsize=18)
        figure.savefig(path, format="png", dpi=110)


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


def _png_map(ax, topics: list[Topic], points: pd.DataFrame, words: bool) -> None:
    ax.set_title(f"Documents ({len(points):,} shown, coloured by topic)")
    ax.set_xticks([])
    ax.set_yticks([])
    if points.empty:
        ax.text(0.5, 0.5, "There are no points to draw.", ha="center", va="center", transform=ax.transAxes)
        return
    colours = {t.topic: t.colour for t in topics}
    ax.scatter(points["x"], points["y"], s=8, c=[colours.get(topic, OUTLIER_COLOUR) for topic in points["topic"]], alpha=0.7, linewidths=0)
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    for t, x, y in _medians(topics, points):
        ax.text(x, y, t.label(words), ha="center", va="center", fontsize=9, fontweight="bold", path_effects=halo)


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
