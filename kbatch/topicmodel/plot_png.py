"""The topic pictures as a PNG, through matplotlib and a Korean font (the ``plot`` extra)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import IO

import pandas as pd

from kbatch.errors import InputError
from kbatch.html import OUTLIER, OUTLIER_COLOUR
from kbatch.topicmodel.labels import Box, labelled
from kbatch.topicmodel.plot_data import OUTLIER_OPACITY, Topic, label_anchors, shown_bars

PNG_DPI, PNG_FONT, PNG_LABEL_PAD = 110, 9, 0.3  # PNG_LABEL_PAD: the label box's margin, in font sizes


def write_png(handle: IO[bytes], topics: list[Topic], points: pd.DataFrame, title: str) -> None:
    """Bars and map side by side, labels placed in the figure's final pixels."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("`plot` FILE.png needs matplotlib: pip install 'kbatch[plot]'") from None
    font = _korean_font()
    words = font is not None
    if not words:
        print("kbatch: warning: no Korean font for matplotlib (pip install 'kbatch[plot]'); PNG topics labelled by number", file=sys.stderr)
    rc = {"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"], "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        shown, _ = shown_bars(topics)
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
        figure.savefig(handle, format="png", dpi=PNG_DPI)


def _png_bars(ax, topics: list[Topic], words: bool) -> None:
    shown, caption = shown_bars(topics)
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
    medians = label_anchors(topics, points)
    area = ax.get_window_extent(renderer)
    pad = PNG_LABEL_PAD * PNG_FONT * PNG_DPI / 72

    def size(text: str) -> tuple[float, float]:
        probe = ax.text(0, 0, text, fontsize=PNG_FONT, fontweight="bold")
        extent = probe.get_window_extent(renderer)
        probe.remove()
        return extent.width + 2 * pad, extent.height + 2 * pad

    anchors = [tuple(ax.transData.transform((x, y))) for _, x, y in medians]
    to_data = ax.transData.inverted()
    for label in labelled([t for t, _, _ in medians], anchors, size, Box(area.x0, area.y0, area.width, area.height), words):
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
