"""The frame of kbatch's self-contained HTML pages (topic plot, run report): no scripts,
no external resources, Hangul in the reader's own fonts."""

from __future__ import annotations

import html
import math

FONT_STACK = 'system-ui, "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans KR", "Noto Sans CJK KR", NanumGothic, sans-serif'
OUTLIER = -1
OUTLIER_COLOUR = "#b0b0b0"
BASE_CSS = f"""body {{ font-family: {FONT_STACK}; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}"""


def page(title: str, body: str, css: str = "") -> str:
    """A complete page: ``title`` escaped, ``body`` and ``css`` as given (already safe)."""
    return f"""<!DOCTYPE html>
<html lang="ko">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
{BASE_CSS}
{css}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def nice_step(span: float, most: int = 5, whole: bool = False) -> float:
    """The smallest step of 1, 2 or 5 × 10^k that covers ``span`` in at most ``most`` steps.

    Round steps (0, 100, 200, 300) let a reader estimate any bar or dot; ``whole`` keeps the
    step at 1 or more, for counts.
    """
    raw = span / most if math.isfinite(span) and span > 0 else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return max(step, 1.0) if whole else step


def ticks(low: float, high: float, step: float) -> list[float]:
    """Multiples of ``step`` from the one at or below ``low`` to the one at or above ``high``."""
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def tick_text(value: float, step: float) -> str:
    """A tick's number with as many decimals as the step needs, thousands separated, never ``-0``."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{round(value, decimals) + 0.0:,.{decimals}f}"


def topic_counts(topics: int, outliers: int | None, shown: int | None = None) -> str:
    """Say "5 topics, 1,325 outliers": topics counted apart from the outlier row, so the count is the table's."""
    noun = "topic" if topics == 1 else "topics"
    head = f"{topics} {noun}" if shown is None or shown >= topics else f"largest {shown} of {topics} {noun}"
    return head if outliers is None else f"{head}, {outliers:,} outliers"
