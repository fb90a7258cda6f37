"""``kbatch topics --plot``: a self-contained HTML page or a PNG of topic sizes and the document map."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from kbatch.errors import InputError
from kbatch.topics import plot
from kbatch.topics.plot import write_plot

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def topics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "topic": [0, 1, 2, -1],
            "size": [120, 80, 40, 60],
            "keywords": [["배우", "연기", "최고"], ["스토리", "지루", "시간"], np.array(["음악", "ost"]), ["영화", "진짜"]],
        }
    )


@pytest.fixture
def points() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    topic = np.repeat([0, 1, 2, -1], [12, 8, 4, 6])
    centres = {0: (0, 0), 1: (5, 5), 2: (-5, 5), -1: (0, 3)}
    xy = np.array([centres[t] for t in topic]) + rng.normal(0, 0.5, (len(topic), 2))
    text = [f"리뷰 {i}번: 연기가 좋아요" for i in range(len(topic))]
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "topic": topic, "text": text})


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed: a parse error means a browser would not draw it."""
    return [ET.fromstring(block) for block in re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)]


def test_html_is_self_contained_with_korean_keywords_as_text(tmp_path, topics, points):
    path = write_plot(tmp_path / "out" / "topics.html", topics, points, "리뷰 토픽")

    assert path == str(tmp_path / "out" / "topics.html")
    page = (tmp_path / "out" / "topics.html").read_text(encoding="utf-8")
    assert "<h1>리뷰 토픽</h1>" in page
    for word in ["배우", "연기", "최고", "스토리", "지루", "시간", "음악", "ost"]:
        assert word in page
    assert not re.search(r"""(src|href)=|<script|<link|@import|url\(""", page)  # nothing to fetch, nothing to run
    assert [p.name for p in tmp_path.joinpath("out").iterdir()] == ["topics.html"]  # no temporary file left behind


def test_html_bars_go_largest_first_with_outliers_in_grey(tmp_path, topics, points):
    write_plot(tmp_path / "t.html", topics, points, "t")

    bars = svgs((tmp_path / "t.html").read_text(encoding="utf-8"))[0]
    labels = [text.text for text in bars.iter(f"{SVG}text") if text.get("text-anchor") == "end"]
    assert labels == ["0 · 배우 연기 최고", "1 · 스토리 지루 시간", "outliers", "2 · 음악 ost"]
    colours = [rect.get("fill") for rect in bars.iter(f"{SVG}rect")]
    assert colours[2] == plot.OUTLIER_COLOUR
    assert len(set(colours)) == 4


def test_html_map_has_one_circle_per_point_and_a_label_per_topic(tmp_path, topics, points):
    write_plot(tmp_path / "t.html", topics, points, "t")

    documents = svgs((tmp_path / "t.html").read_text(encoding="utf-8"))[1]
    circles = list(documents.iter(f"{SVG}circle"))
    assert len(circles) == len(points)
    assert circles[0].find(f"{SVG}title").text == "outliers: 영화, 진짜\n리뷰 24번: 연기가 좋아요"  # outliers drawn underneath
    labels = [text.text for text in documents.iter(f"{SVG}text")]
    assert labels == ["0 · 배우 연기 최고", "1 · 스토리 지루 시간", "2 · 음악 ost"]


def test_html_escapes_document_text(tmp_path, topics, points):
    points.loc[0, "text"] = "<script>alert('x')</script> 좋아요"

    write_plot(tmp_path / "t.html", topics, points, "<b>title</b>")

    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; 좋아요" in page
    assert "<h1>&lt;b&gt;title&lt;/b&gt;</h1>" in page


def test_html_without_topics_says_so(tmp_path):
    empty_topics = pd.DataFrame({"topic": pd.Series(dtype=int), "size": pd.Series(dtype=int), "keywords": pd.Series(dtype=object)})
    empty_points = pd.DataFrame({"x": pd.Series(dtype=float), "y": pd.Series(dtype=float), "topic": pd.Series(dtype=int)})

    write_plot(tmp_path / "t.html", empty_topics, empty_points, "nothing")

    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert "There are no topics." in page
    assert page.rstrip().endswith("</html>")


def test_png_is_a_picture(tmp_path, topics, points):
    pytest.importorskip("matplotlib")

    path = write_plot(tmp_path / "plots" / "topics.png", topics, points.drop(columns="text"), "리뷰 토픽")

    data = (tmp_path / "plots" / "topics.png").read_bytes()
    assert path.endswith("topics.png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000


def test_png_without_topics_says_so(tmp_path):
    pytest.importorskip("matplotlib")
    empty = pd.DataFrame({"topic": [], "size": [], "keywords": []})

    write_plot(tmp_path / "t.png", empty, pd.DataFrame({"x": [], "y": [], "topic": []}), "nothing")

    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")


def test_png_without_a_korean_font_labels_topics_by_number(tmp_path, topics, points, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(plot, "_korean_font", lambda: None)

    write_plot(tmp_path / "t.png", topics, points, "리뷰 토픽")

    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1
    assert "kbatch[plot]" in warning


def test_png_without_matplotlib_says_what_to_install(tmp_path, topics, points, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)

    with pytest.raises(InputError, match=r"pip install 'kbatch\[plot\]'"):
        write_plot(tmp_path / "t.png", topics, points, "t")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["topics.svg", "topics.PDF", "topics"])
def test_other_suffixes_are_refused(tmp_path, topics, points, name):
    with pytest.raises(InputError, match=r"--plot must end in \.html or \.png"):
        write_plot(tmp_path / name, topics, points, "t")
