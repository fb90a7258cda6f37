"""Topic labels on a map, placed so that none covers another: a greedy search of free spots around
each label's anchor, in whatever pixels the picture uses (SVG or matplotlib display)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kbatch.topicmodel.plot_data import Topic

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


def labelled(
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
