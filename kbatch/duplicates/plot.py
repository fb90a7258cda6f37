"""The duplicate share by threshold, as one self-contained HTML page (inline SVG and a table).

A user picks a threshold where the curve flattens: below it, unrelated texts start to join.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from kbatch.html import nice_step, page, tick_text, ticks
from kbatch.io import storage

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 640, 320, 64, 44, 16, 24
LINE, CHOSEN = "#1f77b4", "#d62728"


def write_threshold_plot(path: str | os.PathLike[str], shares: list[dict], chosen: float, rows: int, title: str) -> str:
    """``shares`` (``threshold``, ``duplicates``, ``share`` each) as a line over thresholds, ``chosen`` marked."""
    target = storage.location(path)
    with storage.atomic_write(target) as handle:
        handle.write(_html(shares, chosen, rows, title).encode("utf-8"))
    return str(Path(target).name)


def _html(shares: list[dict], chosen: float, rows: int, title: str) -> str:
    e = html.escape
    table = "".join(f'<tr{" class=chosen" if abs(s["threshold"] - chosen) < 1e-9 else ""}><td class="num">{s["threshold"]:.3f}</td>'
                    f'<td class="num">{s["duplicates"]:,}</td><td class="num">{100 * s["share"]:.2f}%</td></tr>' for s in shares)
    note = (f"Rows removed as duplicates (exact and near) of {rows:,} rows, at each cosine threshold. The red line is the "
            f"threshold of this run ({chosen:g}). Where the curve rises steeply as the threshold falls, unrelated texts begin to join.")
    css = """svg text { font-family: inherit; font-size: 12px; fill: #444; }
tr.chosen td { font-weight: bold; color: #d62728; }
p.note { color: #555; max-width: 640px; }"""
    body = (f"<h1>{e(title)}</h1>\n<p class=note>{e(note)}</p>\n{_svg(shares, chosen)}\n"
            f"<table><tr><th>threshold</th><th>duplicates</th><th>share</th></tr>{table}</table>")
    return page(title, body, css)


def _svg(shares: list[dict], chosen: float) -> str:
    xs, ys = [s["threshold"] for s in shares], [100 * s["share"] for s in shares]
    x_lo, x_hi = min([*xs, chosen]), max([*xs, chosen])
    x_step = nice_step(x_hi - x_lo, 6)
    x_lo, x_hi = x_lo - 1e-9, x_hi + 1e-9
    y_step = nice_step(max(ys) or 1.0, 5)
    y_hi = ticks(0, max(ys) or 1.0, y_step)[-1]
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float, y: float) -> tuple[float, float]:
        return LEFT + (x - x_lo) / (x_hi - x_lo or 1) * width, TOP + height - y / (y_hi or 1) * height

    parts = []
    for y in ticks(0, y_hi, y_step):
        _, py = px(x_lo, y)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{LEFT + width}" y2="{py:.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{tick_text(y, y_step)}%</text>')
    for x in ticks(x_lo, x_hi, x_step):
        if x_lo <= x <= x_hi:
            qx, _ = px(x, 0)
            parts.append(f'<text x="{qx:.1f}" y="{TOP + height + 18}" text-anchor="middle">{tick_text(x, x_step)}</text>')
    cx, _ = px(chosen, 0)
    parts.append(f'<line x1="{cx:.1f}" y1="{TOP}" x2="{cx:.1f}" y2="{TOP + height}" stroke="{CHOSEN}" stroke-dasharray="4 3"/>')
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in zip(xs, ys, strict=True)))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{LINE}"><title>{x:.3f}: {y:.2f}%</title></circle>'
              for x, y, (a, b) in zip(xs, ys, (px(x, y) for x, y in zip(xs, ys, strict=True)), strict=True)]
    parts.append(f'<line x1="{LEFT}" y1="{TOP + height}" x2="{LEFT + width}" y2="{TOP + height}" stroke="#888"/>')
    parts.append(f'<text x="{LEFT + width / 2}" y="{HEIGHT - 6}" text-anchor="middle">cosine threshold</text>')
    parts.append(f'<text transform="translate(14 {TOP + height / 2}) rotate(-90)" text-anchor="middle">duplicate share</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">\n'
            + "\n".join(parts) + "\n</svg>")
