"""``kbatch topics --plot``: a self-contained HTML page or a PNG of topic sizes and the document map."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from kbatch.errors import InputError
from kbatch.topicmodel import plot, plot_png
from kbatch.topicmodel.labels import Box, labelled, place_labels
from kbatch.topicmodel.plot import write_plot
from kbatch.topicmodel.plot_data import table_topics

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
# Run in the page by Chromium: each label's box as laid out, and its text's width in the page's font before the page fits
# it to the box (textLength), written into the DOM for --dump-dom to print.
MEASURE = """<script>
const found = [...document.querySelectorAll("g.label")].map((group) => {
  const text = group.querySelector("text"), box = group.querySelector("rect").getBoundingClientRect();
  const fitted = text.textLength.baseVal.value;
  text.removeAttribute("textLength");
  return {box: [box.left, box.top, box.width, box.height], fitted: fitted, natural: text.getComputedTextLength()};
});
const out = document.createElement("pre");
out.id = "measured";
out.textContent = JSON.stringify(found);
document.body.append(out);
</script>"""


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


def map_labels(documents: ET.Element) -> list[str]:
    return [group.find(f"{SVG}text").text for group in documents.iter(f"{SVG}g") if group.get("class") == "label"]


def label_boxes(documents: ET.Element) -> list[Box]:
    """The white boxes behind the map's labels, as the page draws them."""
    rects = [group.find(f"{SVG}rect") for group in documents.iter(f"{SVG}g") if group.get("class") == "label"]
    return [Box(*(float(rect.get(key)) for key in ("x", "y", "width", "height"))) for rect in rects]


def crowded(n: int = 40, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Many topics with long labels whose centres lie close together, over a cloud of outliers."""
    rng = np.random.default_rng(seed)
    words = ["배송", "포장", "가격", "할인", "품질", "디자인", "사이즈", "색상", "재구매", "고객센터"]
    centres = rng.normal(0, 1, (n, 2))
    topic = np.repeat(np.arange(n), 30)
    xy = centres[topic] + rng.normal(0, 0.2, (len(topic), 2))
    points = pd.concat([pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "topic": topic}),
                        pd.DataFrame({"x": rng.normal(0, 1.5, 300), "y": rng.normal(0, 1.5, 300), "topic": -1})])  # fmt: skip
    table = pd.DataFrame({"topic": [-1, *range(n)], "size": [300, *rng.integers(30, 500, n)],
                          "keywords": [["영화"], *(list(rng.choice(words, 3, replace=False)) for _ in range(n))]})  # fmt: skip
    return table, points


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
    assert map_labels(documents) == ["0 · 배우 연기 최고", "1 · 스토리 지루 시간", "2 · 음악 ost"]


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
    monkeypatch.setattr(plot_png, "_korean_font", lambda: None)

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
    with pytest.raises(InputError, match=r"`plot` must end in \.html or \.png"):
        write_plot(tmp_path / name, topics, points, "t")


def test_placed_labels_never_overlap_and_stay_inside_the_map():
    rng = np.random.default_rng(0)
    anchors = [tuple(a) for a in rng.normal(400, 40, (60, 2))]  # 60 labels crowded around one spot
    sizes = [(float(w), 18.0) for w in rng.integers(20, 160, 60)]
    bounds = Box(0, 0, 800, 800)

    boxes = place_labels(anchors, sizes, bounds)

    placed = [box for box in boxes if box is not None]
    assert len(placed) >= 40
    assert all(box.inside(bounds) for box in placed)
    assert not [(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :] if a.meets(b)]
    first = boxes[0]
    assert (first.left + first.width / 2, first.top + first.height / 2) == pytest.approx(anchors[0])  # the largest topic stays put


def test_a_label_moves_next_to_its_anchor_when_the_spot_is_taken():
    taken = Box(90, 90, 20, 20)

    box = place_labels([(100.0, 100.0)], [(40.0, 20.0)], Box(0, 0, 200, 200), [taken])[0]

    assert not box.meets(taken)
    assert abs(box.left + 20 - 100) <= 40 and abs(box.top + 10 - 100) <= 40  # next door, not across the map


def test_a_label_near_the_edge_is_pushed_inside():
    box = place_labels([(2.0, 199.0)], [(60.0, 18.0)], Box(0, 0, 200, 200))[0]

    assert box == Box(0, 182, 60, 18)


def test_html_crowded_map_has_labels_that_do_not_overlap(tmp_path):
    table, points = crowded()

    write_plot(tmp_path / "t.html", table, points, "crowded")

    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    documents = svgs(page)[1]
    boxes = label_boxes(documents)
    area = next(rect for rect in documents.iter(f"{SVG}rect") if rect.get("fill") == "#fafafa")
    bounds = Box(*(float(area.get(key)) for key in ("x", "y", "width", "height")))
    assert len(boxes) >= 30
    assert all(box.inside(bounds) for box in boxes)
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.meets(b)]
    left_off = 40 - len(boxes)
    assert (f"The labels of {left_off} small topics did not fit" in page) == (left_off > 0)


def test_html_labels_sit_on_white_boxes_edged_in_their_topic_colour(tmp_path, topics, points):
    write_plot(tmp_path / "t.html", topics, points, "t")

    documents = svgs((tmp_path / "t.html").read_text(encoding="utf-8"))[1]
    colours = {t.label(): t.colour for t in table_topics(topics)}
    groups = [group for group in documents.iter(f"{SVG}g") if group.get("class") == "label"]
    assert len(groups) == 3
    for group in groups:
        rect, text = group.find(f"{SVG}rect"), group.find(f"{SVG}text")
        assert rect.get("fill") == "#fff"
        assert rect.get("stroke") == colours[text.text]
        assert float(text.get("textLength")) == pytest.approx(float(rect.get("width")) - 2 * plot.LABEL_PAD_X)


def test_html_outliers_are_small_faint_and_underneath(tmp_path, topics, points):
    write_plot(tmp_path / "t.html", topics, points, "t")

    circles = list(svgs((tmp_path / "t.html").read_text(encoding="utf-8"))[1].iter(f"{SVG}circle"))
    outliers = [c for c in circles if c.find(f"{SVG}title").text.startswith("outliers")]
    others = [c for c in circles if not c.find(f"{SVG}title").text.startswith("outliers")]
    assert circles[: len(outliers)] == outliers
    assert max(float(c.get("r")) for c in outliers) < min(float(c.get("r")) for c in others)
    assert max(float(c.get("fill-opacity")) for c in outliers) <= 0.5 < min(float(c.get("fill-opacity")) for c in others)


def test_counts_leave_outliers_out_of_the_topics(tmp_path, topics, points):
    write_plot(tmp_path / "t.html", topics, points, "3 topics of 300 documents")

    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert "<h2>Topic sizes (3 topics, 60 outliers)</h2>" in page


def test_html_map_has_round_ticks_with_one_scale_on_both_axes(tmp_path, topics, points):
    points["y"] *= 3  # a projection taller than wide must not be squashed into a square

    write_plot(tmp_path / "t.html", topics, points, "t")

    documents = svgs((tmp_path / "t.html").read_text(encoding="utf-8"))[1]
    ticks = [t for t in documents.iter(f"{SVG}text") if t.get("class") == "tick"]
    x_ticks = [(float(t.text), float(t.get("x"))) for t in ticks if t.get("text-anchor") == "middle"]
    y_ticks = [(float(t.text), float(t.get("y"))) for t in ticks if t.get("text-anchor") == "end"]
    assert [t.text for t in documents.iter(f"{SVG}text") if t.get("class") == "axis"] == ["PCA 1", "PCA 2"]
    assert len(x_ticks) >= 3 and len(y_ticks) >= 3
    step = x_ticks[1][0] - x_ticks[0][0]
    assert round(step / 10 ** np.floor(np.log10(step)), 6) in (1, 2, 5)
    assert y_ticks[1][0] - y_ticks[0][0] == pytest.approx(step)  # the same step on both axes
    x_scale = (x_ticks[1][1] - x_ticks[0][1]) / step
    y_scale = (y_ticks[0][1] - y_ticks[1][1]) / step  # +y up
    assert x_scale == pytest.approx(y_scale, abs=0.2)  # one scale: a distance on the map means the same in both directions


def test_png_labels_are_placed_without_overlap(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    placed = []
    monkeypatch.setattr(plot_png, "labelled", lambda *args, **kwargs: placed.extend(labelled(*args, **kwargs)) or placed)
    table, points = crowded()

    write_plot(tmp_path / "t.png", table, points, "crowded")

    boxes = [label.box for label in placed]
    assert len(boxes) >= 30
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.meets(b)]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium and a Korean font (Debian: apt-get install chromium fonts-noto-cjk)")
def test_chromium_lays_out_labels_apart_with_text_about_as_wide_as_their_boxes(tmp_path):
    table, points = crowded()
    write_plot(tmp_path / "t.html", table, points, "crowded")
    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    (tmp_path / "measure.html").write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")

    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (tmp_path / "measure.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip

    measured = json.loads(html.unescape(re.search(r'<pre id="measured">(.*?)</pre>', dom, flags=re.DOTALL).group(1)))
    boxes = [Box(*label["box"]) for label in measured]
    assert len(boxes) == len(label_boxes(svgs(page)[1])) >= 30
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.meets(b)]
    ratios = [label["natural"] / label["fitted"] for label in measured]
    assert min(ratios) >= 0.8 and max(ratios) <= 1.05, ratios  # fitting the text to its box barely stretches or squeezes it
