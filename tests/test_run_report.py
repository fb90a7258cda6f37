"""``report.html`` of a nightly run: one self-contained page with the steps, the match scores and the topics."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from kbatch.jobs.report import write_run_report

SVG = "{http://www.w3.org/2000/svg}"
EDGES = [i / 20 for i in range(21)]


@pytest.fixture
def run() -> dict:
    """A complete nightly run with one step of each kind: embeddings from the cache, matches with scores, topics."""
    return {
        "job": "nightly_product_matching",
        "date": "2026-11-26",
        "status": "complete",
        "started_at": "2026-11-26T02:00:03+0900",
        "finished_at": "2026-11-26T02:07:41+0900",
        "seconds": 458.2,
        "dashboard": "http://127.0.0.1:8787/status",
        "performance_report": "performance.html",
        "error": None,
        "steps": [
            {
                "name": "embed_catalog",
                "command": "embed",
                "output": "out/2026-11-26/catalog-emb",
                "status": "complete",
                "rows": 50000,
                "rows_done": 49990,
                "seconds": 401.5,
                "throughput_rows_per_s": 124.5,
                "cache": {"hits": 49500, "misses": 500},
            },
            {
                "name": "match",
                "command": "match",
                "output": "out/2026-11-26/matches",
                "status": "complete",
                "rows": 1200,
                "rows_done": 1200,
                "seconds": 12.0,
                "throughput_rows_per_s": 100.0,
                "score_histogram": {"edges": EDGES, "counts": [0] * 10 + [5, 8, 13, 21, 34, 55, 89, 144, 233, 598]},
            },
            {
                "name": "topics",
                "command": "topics",
                "output": "out/2026-11-26/topics",
                "status": "reused",
                "rows": 200,
                "rows_done": 200,
                "seconds": 0.4,
                "topic_sizes": [
                    {"topic": -1, "size": 30, "keywords": ["영화", "배우"]},
                    {"topic": 0, "size": 120, "keywords": ["배송", "포장", "빠름", "만족"]},
                    {"topic": 1, "size": 50, "keywords": ["가격", "할인"]},
                ],
            },
        ],
    }


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed: a parse error means a browser would not draw it."""
    return [ET.fromstring(block) for block in re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)]


def by_label(page: str) -> dict[str, ET.Element]:
    return {svg.get("aria-label"): svg for svg in svgs(page)}


def test_complete_run_shows_every_step_and_cache_hit_rate(tmp_path, run):
    (tmp_path / "reports" / "2026-11-26").mkdir(parents=True)
    (tmp_path / "reports" / "2026-11-26" / "performance.html").write_text("<html></html>", encoding="utf-8")

    path = write_run_report(tmp_path / "reports" / "2026-11-26" / "report.html", run)

    assert path == str(tmp_path / "reports" / "2026-11-26" / "report.html")
    page = (tmp_path / "reports" / "2026-11-26" / "report.html").read_text(encoding="utf-8")
    for name in ["nightly_product_matching", "embed_catalog", "match", "topics", "out/2026-11-26/catalog-emb"]:
        assert name in page
    assert "99.0% (49,500 hits / 500 misses)" in page
    assert "7 min 38 s" in page
    assert '<a href="performance.html">Dask performance report</a>' in page
    assert not re.search(r"<script|<link|@import|url\(|src=", page)  # nothing to run, nothing to fetch
    assert sorted(p.name for p in (tmp_path / "reports" / "2026-11-26").iterdir()) == ["performance.html", "report.html"]


def test_score_histogram_has_one_bar_per_bin_and_labelled_axes(tmp_path, run):
    write_run_report(tmp_path / "report.html", run)

    chart = by_label((tmp_path / "report.html").read_text(encoding="utf-8"))["histogram of match scores"]
    assert len(list(chart.iter(f"{SVG}rect"))) == len(EDGES) - 1
    labels = [text.text for text in chart.iter(f"{SVG}text")]
    assert {"0", "0.5", "1", "match score", "count"} <= set(labels)


@pytest.mark.parametrize(
    ("tallest", "scale"),
    [(598, ["0", "200", "400", "600"]), (321, ["0", "100", "200", "300", "400"]), (3, ["0", "1", "2", "3"]), (0, ["0", "1"]),
     (12_345, ["0", "5,000", "10,000", "15,000"])],
)  # fmt: skip
def test_score_histogram_counts_are_round_numbers_up_to_the_tallest_bar(tmp_path, run, tallest, scale):
    run["steps"][1]["score_histogram"]["counts"] = [0] * 19 + [tallest]

    write_run_report(tmp_path / "report.html", run)

    chart = by_label((tmp_path / "report.html").read_text(encoding="utf-8"))["histogram of match scores"]
    counts = [text for text in chart.iter(f"{SVG}text") if text.get("text-anchor") == "end"]
    assert [text.text for text in counts] == scale
    grid = sorted(float(line.get("y1")) for line in chart.iter(f"{SVG}line") if line.get("stroke") == "#e6e6e6")
    assert grid == pytest.approx(sorted(float(text.get("y")) - 4 for text in counts))  # a grid line at each number
    bar = list(chart.iter(f"{SVG}rect"))[-1]
    assert float(bar.get("height")) == pytest.approx((grid[-1] - grid[0]) * tallest / float(scale[-1].replace(",", "")), abs=0.1)


def test_topic_sizes_go_largest_first_with_korean_keywords_and_grey_outliers(tmp_path, run):
    write_run_report(tmp_path / "report.html", run)

    chart = by_label((tmp_path / "report.html").read_text(encoding="utf-8"))["topic sizes"]
    labels = [text.text for text in chart.iter(f"{SVG}text") if text.get("text-anchor") == "end"]
    assert labels == ["0 · 배송 포장 빠름", "1 · 가격 할인", "outliers"]
    assert "topics: topic sizes (2 topics, 30 outliers)" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert [rect.get("fill") for rect in chart.iter(f"{SVG}rect")][2] == "#b0b0b0"
    assert chart.find(f"{SVG}rect/{SVG}title").text == "topic 0: 배송, 포장, 빠름, 만족 (120 documents)"


def test_topic_chart_keeps_the_30_largest(tmp_path, run):
    run["steps"][2]["topic_sizes"] = [{"topic": i, "size": 100 + i, "keywords": [f"단어{i}"]} for i in range(45)]

    write_run_report(tmp_path / "report.html", run)

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "topic sizes (largest 30 of 45 topics)" in page
    labels = [text.text for text in by_label(page)["topic sizes"].iter(f"{SVG}text") if text.get("text-anchor") == "end"]
    assert labels[0] == "44 · 단어44"
    assert len(labels) == 30


def test_seconds_per_step_has_a_bar_per_timed_step(tmp_path, run):
    write_run_report(tmp_path / "report.html", run)

    chart = by_label((tmp_path / "report.html").read_text(encoding="utf-8"))["seconds per step"]
    assert [text.text for text in chart.iter(f"{SVG}text") if text.get("text-anchor") == "end"] == ["embed_catalog", "match", "topics"]


def test_failed_run_shows_the_error_escaped_and_no_histogram(tmp_path):
    failed = {
        "job": "nightly_product_matching",
        "date": "2026-11-27",
        "status": "failed",
        "seconds": 61.0,
        "dashboard": None,
        "performance_report": None,
        "error": "match: worker died <script>alert('x')</script> at 후보 생성",
        "steps": [
            {"name": "embed_catalog", "command": "embed", "status": "reused", "rows": 50000, "seconds": 3.2, "cache": None},
            {"name": "match", "command": "match", "status": "failed", "seconds": 57.8},
        ],
    }

    write_run_report(tmp_path / "report.html", failed)

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "match: worker died &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; at 후보 생성" in page
    assert ">failed</span>" in page
    assert "<a href" not in page
    assert set(by_label(page)) == {"seconds per step"}


def test_run_without_steps_still_writes_a_page(tmp_path):
    write_run_report(tmp_path / "report.html", {"job": "nightly_product_matching", "date": "2026-11-28", "status": "failed", "steps": []})

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "The run has no steps." in page
    assert svgs(page) == []
    assert page.rstrip().endswith("</html>")


def test_dashboard_is_shown_as_gone_and_the_performance_report_linked_instead(tmp_path, run):
    (tmp_path / "performance.html").write_text("<html></html>", encoding="utf-8")

    write_run_report(tmp_path / "report.html", run)

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'href="http://127.0.0.1:8787' not in page  # the run's cluster, and its dashboard, are gone when anyone reads this
    assert "Dask dashboard: <code>http://127.0.0.1:8787/status</code> (live only while the run was going)" in page
    assert '<a href="performance.html">Dask performance report</a> (the task stream, profiles and bandwidth of this run' in page


def test_a_performance_report_that_was_not_written_is_not_linked(tmp_path, run):
    write_run_report(tmp_path / "report.html", run)

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<a href" not in page
    assert "Dask performance report: performance.html was not written next to this page" in page


def test_links_that_would_run_script_are_shown_as_text(tmp_path, run):
    run["dashboard"] = run["performance_report"] = "javascript:alert(1)"
    (tmp_path / "javascript:alert(1)").write_text("", encoding="utf-8")  # even a file of that name is linked as a file

    write_run_report(tmp_path / "report.html", run)

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'href="javascript:' not in page
    assert '<a href="javascript%3Aalert%281%29">' in page
    assert "Dask dashboard: <code>javascript:alert(1)</code>" in page
