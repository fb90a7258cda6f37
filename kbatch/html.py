"""The frame of kbatch's self-contained HTML pages (topic plot, run report): no scripts,
no external resources, Hangul in the reader's own fonts."""

from __future__ import annotations

import html

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
