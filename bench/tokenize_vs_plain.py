"""Each analyzer's plain loop in one process against ``kbatch tokenize`` on the local cluster.

    python bench/tokenize_vs_plain.py [--analyzers mecab,kiwi,okt] [--rows 20000] [--partition-rows 2500]

The plain loop is what a user writes without kbatch: load the analyzer, then
``[(form, tag), ...]`` for every review, in one process. kbatch runs the same reviews
through read → normalize → analyze → Parquet on a fresh local cluster per analyzer.
Both rates are steady state: start-up (JVM, dictionaries, cluster) is excluded by timing
two input sizes (N and 2N reviews) and dividing the extra rows by the extra seconds. The
two ways run in alternating rounds so both see the same load on this shared machine;
the ratio is the median of the rounds' ratios. Prints reviews/s, the ratio, and the peak
resident memory of the plain process and of each worker.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shared_data import default_reviews, read_reviews

from kbatch.analyzers import ANALYZERS, AnalyzerSpec
from kbatch.commands.tokenize import tokenize
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig

# The slow analyzers get fewer reviews so the whole bench stays within minutes.
DEFAULT_ROWS = {"mecab": 20000, "kiwi": 10000, "komoran": 4000, "okt": 3000, "hannanum": 1500, "kkma": 300}
# Alternating rounds (median reported) where a round takes seconds; one for the slow analyzers.
ROUNDS = {"mecab": 7, "kiwi": 3, "komoran": 2, "okt": 2, "hannanum": 2, "kkma": 2}


def plain_tagger(name: str):
    """The analyzer as its own package offers it: a callable text -> [(form, tag), ...]."""
    if name == "mecab":
        import mecab_ko

        parse = mecab_ko.Tagger().parse

        def pos(text: str) -> list[tuple[str, str]]:
            lines = parse(text).split("\n")
            return [(surface, features.split(",", 1)[0]) for surface, features in (line.split("\t", 1) for line in lines[:-2])]

        return pos
    if name == "kiwi":
        from kiwipiepy import Kiwi

        kiwi = Kiwi(num_workers=1)
        return lambda text: [(t.form, t.tag) for t in kiwi.tokenize(text)]
    import konlpy.tag

    tagger = getattr(konlpy.tag, ANALYZERS[name].cls)()
    if name == "okt":  # kbatch asks Okt for stems (먹다 -> 먹), which costs Okt extra work
        return lambda text: tagger.pos(text, norm=True, stem=True)
    if name == "hannanum":  # kbatch maps the 22-tag set
        return lambda text: tagger.pos(text, ntags=22)
    return tagger.pos


_plain: dict = {}  # the child process's analyzer and texts, kept between rounds


def plain_setup(name: str, texts: list[str], warm: int) -> None:
    """In the child: load the analyzer and warm it (dictionaries paged in, the JVM's JIT done)."""
    _plain.update(pos=plain_tagger(name), texts=texts)
    for text in texts[:warm]:
        _plain["pos"](text)


def plain_seconds(size: int) -> float:
    start = time.perf_counter()
    pos = _plain["pos"]
    for text in _plain["texts"][:size]:
        pos(text)
    return time.perf_counter() - start


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def steady_rate(sizes: tuple[int, int], seconds) -> float | None:
    """Extra rows / extra seconds between the two sizes: start-up and per-run costs cancel.

    ``None`` when the larger run was not slower (a hiccup of the shared machine).
    """
    small, large = seconds(sizes[0]), seconds(sizes[1])
    return (sizes[1] - sizes[0]) / (large - small) if large > small else None


def compare(name: str, texts: list[str], files: tuple[Path, Path], sizes: tuple[int, int], work: Path, partition_rows: int | None, pool):
    """Plain loop and kbatch in alternating rounds, so both see the same machine load.

    Returns the median plain and kbatch rates, the median of the per-round ratios, and the
    peak RSS of the plain process and of each worker.
    """
    pool.apply(plain_setup, (name, texts, sizes[0]))
    config = ClusterConfig(dashboard_address=":0")
    with open(os.devnull, "w") as quiet, open_cluster(config, log=quiet) as cluster:
        options = {"analyzer": name, "client": cluster.client, "progress": False, "overwrite": True, "partition_rows": partition_rows}
        tokenize(files[0], work / f"{name}-warm", **options)  # every worker loads and warms the analyzer
        by_size = dict(zip(sizes, files, strict=True))

        def kbatch_seconds(size: int) -> float:
            return tokenize(by_size[size], work / f"{name}-{size}", **options).manifest["seconds"]["total"]

        rounds = [
            (steady_rate(sizes, lambda size: pool.apply(plain_seconds, (size,))), steady_rate(sizes, kbatch_seconds))
            for _ in range(ROUNDS.get(name, 1))
        ]
        peaks = sorted(cluster.client.run(peak_mib).values())
    rounds = [(p, k) for p, k in rounds if p and k]
    plain, ours = (statistics.median(r[i] for r in rounds) for i in (0, 1))
    ratios = sorted(k / p for p, k in rounds)
    return plain, ours, ratios, pool.apply(peak_mib), peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    parser.add_argument("--analyzers", default=",".join(DEFAULT_ROWS), help="comma list (default: all six)")
    parser.add_argument("--rows", type=int, help="reviews per analyzer (default: 20,000 for mecab, fewer for slower ones)")
    parser.add_argument("--partition-rows", type=int, help="kbatch partition size (default: kbatch's own per analyzer)")
    args = parser.parse_args()
    reviews = read_reviews(args.data, ["text"])
    spawn = multiprocessing.get_context("spawn")
    header = f"{'analyzer':<9} {'reviews':>7} {'plain/s':>9} {'kbatch/s':>9} {'ratio':>6} {'rounds':>13} {'plain MiB':>9}  worker peak MiB"
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.analyzers.split(","):
            try:
                AnalyzerSpec(name).check()
            except Exception as exc:
                print(f"{name:<9} skipped: {exc}")
                continue
            rows = args.rows or DEFAULT_ROWS[name]
            sizes = (rows, 2 * rows)
            files = tuple(work / f"reviews-{n}.parquet" for n in sizes)
            for n, path in zip(sizes, files, strict=True):
                reviews.head(n).to_parquet(path)
            texts = reviews["text"].head(2 * rows).tolist()
            with spawn.Pool(1) as pool:  # a fresh plain process per analyzer (a JVM cannot be unloaded)
                plain, ours, ratios, plain_mib, peaks = compare(name, texts, files, sizes, work, args.partition_rows, pool)
            spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f} ({len(ratios)})"
            ratio = statistics.median(ratios)
            print(f"{name:<9} {rows:>7,} {plain:>9,.0f} {ours:>9,.0f} {ratio:>5.2f}x {spread:>13} {plain_mib:>9,}  {peaks}", flush=True)
    print(f"({os.cpu_count()} cores; steady state from N and 2N reviews; rates and ratio are medians of alternating rounds, "
          f"'rounds' the range of the rounds' ratios and their number; python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
