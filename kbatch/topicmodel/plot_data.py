"""What both pictures of a topic model draw: topics largest first with their colours and labels,
the map's points, where each label wants to go, and which bars are shown."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kbatch.html import OUTLIER, OUTLIER_COLOUR, topic_counts

# 20 colours that stay apart from each other (after Sasha Trubetskoy's list, less his grey, the outliers' colour, and his
# beige, which vanishes on the map's background); topics past 20 cycle.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#800000",
    "#808000", "#000075", "#ffe119", "#bfef45", "#fabed4", "#dcbeff", "#aaffc3", "#ffd8b1", "#000000", "#5e3c99",
)  # fmt: skip
MAX_BARS = 40  # more bars than this are unreadable; the HTML table still lists every topic
LABEL_WORDS = 3
TOOLTIP_CHARS = 200
OUTLIER_OPACITY = 0.35  # outliers drawn faint, underneath the topics


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


def table_topics(frame: pd.DataFrame) -> list[Topic]:
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


def drawable_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Points with finite coordinates, outliers first so real topics are drawn over them."""
    columns = ["x", "y", "topic", *(["text"] if "text" in frame.columns else [])]
    sample = frame[columns].copy()
    sample["x"] = sample["x"].astype(float)
    sample["y"] = sample["y"].astype(float)
    sample = sample[np.isfinite(sample["x"]) & np.isfinite(sample["y"])]
    return sample.assign(_front=sample["topic"] != OUTLIER).sort_values("_front", kind="stable").drop(columns="_front")


def label_anchors(topics: list[Topic], points: pd.DataFrame) -> list[tuple[Topic, float, float]]:
    """Where each topic's label wants to go: the median of its points (outliers get no label)."""
    grouped = points.groupby("topic")[["x", "y"]].median()
    return [(t, grouped.at[t.topic, "x"], grouped.at[t.topic, "y"]) for t in topics if t.topic != OUTLIER and t.topic in grouped.index]


def shown_bars(topics: list[Topic]) -> tuple[list[Topic], str]:
    """The bars: the largest ``MAX_BARS`` topics and the outliers, with a caption that counts them apart."""
    real = [t for t in topics if t.topic != OUTLIER]
    outliers = next((t for t in topics if t.topic == OUTLIER), None)
    kept = {t.topic for t in real[:MAX_BARS]} | {OUTLIER}
    caption = topic_counts(len(real), outliers and outliers.size, MAX_BARS)
    return [t for t in topics if t.topic in kept], caption
