"""Topics and keywords: kbatch against BERTopic and KeyBERT on the same reviews and vectors,
outliers against gold topics, then kbatch topics on a million documents.

    python bench/topics.py [--docs 10000] [--keyword-docs 2000] [--million 1000000] [--data FILE] [--no-gold]

1. Topics, 10,000 NSMC reviews: the same vectors (``kbatch embed``, done once, cached in
   the work folder) go to BERTopic (UMAP + HDBSCAN, a MeCab-ko noun CountVectorizer with
   kbatch's stopwords) and to ``kbatch topics`` (its defaults: HDBSCAN; k-means with
   BERTopic's count; k-means with k chosen by silhouette; CTM and k-means with 20 topics). Every contender
   runs in a fresh process: time includes kbatch's cluster start and all tokenizing.
   BERTopic runs three times: with its defaults, with ``reduce_frequent_words`` (the
   square-root damping kbatch's c-TF-IDF always applies), so the words are weighed alike,
   and with ``reduce_outliers`` (embeddings strategy) and ``update_topics`` after its fit.
   NPMI and diversity of each one's top-10 words are computed the same way, on the same
   noun documents (:mod:`kbatch.topicmodel.quality`); outliers are documents left in topic -1.
2. Outliers against gold topics (skipped with ``--no-gold``): KorSTS's sentences (sentence1
   of all three files; gold: their genre, news, captions or forum) and the offers of 3,000
   synthetic catalog products (bench/catalog.py; gold: their category), embedded once, and
   the reviews of 1. HDBSCAN as ``kbatch topics`` fits it (the whole corpus is its sample)
   with ``--outliers keep`` and ``nearest`` at several percentiles, against BERTopic
   (seeded UMAP) with its defaults and ``reduce_outliers`` at several thresholds: topics,
   outlier share, and NMI against the gold topics with the outliers as a label of their own.
3. Keywords: KeyBERT with the same model and, per document, the same candidates (kbatch's
   morpheme n-grams, given through a CountVectorizer analyzer) against ``kbatch
   keywords``, MMR diversity 0 and 0.5: time, peak memory, overlap@5.
4. Scale: the reviews repeated with light variation to ``--million`` documents. Embedding
   a million texts on 2 CPU cores takes hours, so each copy's vector is its review's real
   vector plus small noise (renormalized), written as Parquet (``id``, ``embedding``) and
   passed with ``--embeddings``; morphemes are computed for real. Reports time and the
   peak memory of every worker (the bar: none over 4 GiB).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from catalog import _products as catalog_products
from catalog import make_catalog
from shared_data import default_reviews, read_reviews, shared_data_dir

from kbatch.commands.embed import embed
from kbatch.commands.topics import HDBSCAN_DIMS
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import load_sentence_transformer, resolve_model
from kbatch.topicmodel.clustering import fit_hdbscan
from kbatch.topicmodel.quality import count_cooccurrence, npmi, topic_diversity
from kbatch.vectors.columns import vector_matrix

TOP_WORDS = 10
# Section 2: percentiles of --outliers nearest (None: --outliers keep) and thresholds of
# BERTopic's reduce_outliers (0 is its default) that are compared.
PERCENTILES = (None, 0, 1, 2, 5, 10, 20, 50)
THRESHOLDS = (0.0, 0.3, 0.4, 0.5)
CATALOG_PRODUCTS = 3_000
ENDINGS = ("", " ㅋㅋ", "!!", " 진짜", "...", " 강추", "ㅎㅎ", " 별로")


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def in_child(function, *args):
    """``function(*args)`` in a fresh spawned process, so its peak memory is its own (not a
    daemon, so kbatch can start its cluster's worker processes from it)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def kbatch_run(command: str, source: str, output: str, options: dict) -> dict:
    """A kbatch command on its own fresh local cluster: seconds, words, peaks of client and workers."""
    from kbatch.commands.keywords import keywords
    from kbatch.commands.topics import topics

    with open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        with open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
            run = {"topics": topics, "keywords": keywords}[command]
            result = run(source, output, client=cluster.client, progress=False, log=quiet, overwrite=True, **options)
            workers = cluster.client.run(peak_mib)
        seconds = time.perf_counter() - start
    found = {"seconds": seconds, "client_mib": peak_mib(), "worker_mib": sorted(workers.values()), "manifest": result.manifest}
    if command == "topics":
        table = pd.read_parquet(Path(output) / "topics.parquet")
        found["words"] = [list(w) for w in table.loc[table.topic >= 0, "keywords"]]
        found["outliers"] = int(table.loc[table.topic == -1, "size"].sum())
    else:
        found["keywords"] = [list(k) if k is not None else [] for k in pd.read_parquet(output).keywords]
    return found


def nouns_tokenizer():
    """What a BERTopic user on Korean writes: MeCab-ko nouns, minus stopwords (kbatch's list, for a fair count)."""
    import mecab_ko

    from kbatch.analyzers.stopwords import BUILTIN, load_stopwords

    parse, stop = mecab_ko.Tagger().parse, load_stopwords(BUILTIN)

    def nouns(text: str) -> list[str]:
        lines = parse(text).split("\n")[:-2]
        pairs = (line.split("\t", 1) for line in lines)
        return [form for form, features in pairs if features.split(",", 1)[0] in ("NNG", "NNP", "NNB", "NR", "NP") and form not in stop]

    return nouns


def bertopic_run(texts: list[str], vectors_path: str, model_path: str, reduce_frequent_words: bool, reduce_outliers: bool = False) -> dict:
    """BERTopic on the given vectors; with ``reduce_outliers``, then its ``reduce_outliers`` (embeddings strategy,
    default threshold) and ``update_topics``, as its documentation advises."""
    from bertopic import BERTopic
    from bertopic.vectorizers import ClassTfidfTransformer
    from sklearn.feature_extraction.text import CountVectorizer

    vectors = np.load(vectors_path)
    model = load_sentence_transformer(model_path, "cpu")
    start = time.perf_counter()
    vectorizer = CountVectorizer(tokenizer=nouns_tokenizer(), lowercase=False, token_pattern=None)
    ctfidf = ClassTfidfTransformer(reduce_frequent_words=reduce_frequent_words)
    topic_model = BERTopic(embedding_model=model, vectorizer_model=vectorizer, ctfidf_model=ctfidf, top_n_words=TOP_WORDS)
    assigned, _ = topic_model.fit_transform(texts, vectors)
    if reduce_outliers:
        assigned = topic_model.reduce_outliers(texts, assigned, strategy="embeddings", embeddings=vectors)
        topic_model.update_topics(texts, topics=assigned, vectorizer_model=vectorizer, ctfidf_model=ctfidf, top_n_words=TOP_WORDS)
    seconds = time.perf_counter() - start
    words = [[w for w, _ in topic_model.get_topic(t)] for t in sorted(set(assigned)) if t != -1]
    outliers = int(np.sum(np.asarray(assigned) == -1))
    return {"seconds": seconds, "client_mib": peak_mib(), "worker_mib": [], "words": words, "outliers": outliers}


def keybert_run(texts: list[str], model_path: str, diversity: float) -> dict:
    """KeyBERT on the same candidates as kbatch: kbatch's own candidate stages give each document's n-grams."""
    from keybert import KeyBERT
    from sklearn.feature_extraction.text import CountVectorizer

    from kbatch.analyzers import AnalyzerSpec
    from kbatch.analyzers.stopwords import BUILTIN, load_stopwords
    from kbatch.analyzers.tags import TAGS, parse_pos
    from kbatch.stages import MorphAnalyze, NormalizeText
    from kbatch.stages.candidates import KeywordCandidates

    model = load_sentence_transformer(model_path, "cpu")
    start = time.perf_counter()
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
    frame = NormalizeText()(frame)
    frame = MorphAnalyze(AnalyzerSpec(), TAGS)(frame)
    frame = KeywordCandidates(parse_pos("nouns"), load_stopwords(BUILTIN), 2)(frame)
    candidates = dict(zip(texts, (c or [] for c in pa.array(frame["candidates"]).to_pylist()), strict=True))
    vectorizer = CountVectorizer(analyzer=lambda doc: candidates[doc])
    found = KeyBERT(model=model).extract_keywords(texts, vectorizer=vectorizer, top_n=5, use_mmr=diversity > 0, diversity=diversity)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "client_mib": peak_mib(), "worker_mib": [], "keywords": [[w for w, _ in k] for k in found]}


def overlap_at_5(ours: list[list[str]], theirs: list[list[str]]) -> float:
    shares = [len(set(a[:5]) & set(b[:5])) / max(len(a[:5]), len(b[:5])) for a, b in zip(ours, theirs, strict=True) if a or b]
    return float(np.mean(shares))


def quality(words: list[list[str]], documents: list) -> tuple[float, float]:
    """Mean NPMI over topics and topic diversity, on the same noun documents for everyone."""
    vocabulary = sorted({w for ws in words for w in ws})
    per_topic = npmi(count_cooccurrence(documents, vocabulary), words)
    return float(np.nanmean(per_topic)), topic_diversity(words)


def memory(found: dict) -> str:
    workers = f" workers {found['worker_mib']}" if found["worker_mib"] else ""
    return f"{found['client_mib']:,} MiB{workers}"


def topic_bench(work: Path, reviews: pd.DataFrame, model_path: str) -> None:
    corpus, vectors = str(work / "reviews.parquet"), str(work / "vectors")
    reviews.to_parquet(corpus)
    with open(os.devnull, "w") as quiet, open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
        embed(corpus, vectors, id_col="review_id", client=cluster.client, progress=True, log=quiet)
    matrix, _ = vector_matrix(pq.read_table(vectors, columns=["embedding"]).column("embedding").combine_chunks())
    np.save(work / "vectors.npy", matrix)
    texts, vectors_npy = reviews.text.tolist(), str(work / "vectors.npy")
    bertopic = in_child(bertopic_run, texts, vectors_npy, model_path, False)
    common = {"embeddings": vectors, "id_col": "review_id"}
    contenders = {
        "BERTopic (UMAP + HDBSCAN), defaults": bertopic,
        "BERTopic, reduce_frequent_words=True": in_child(bertopic_run, texts, vectors_npy, model_path, True),
        "BERTopic + reduce_outliers (embeddings)": in_child(bertopic_run, texts, vectors_npy, model_path, False, True),
    }
    k = len(bertopic["words"])
    runs = {
        "kbatch (defaults: --method hdbscan)": {},
        "kbatch --outliers keep": {"outliers": "keep"},
        f"kbatch --method kmeans --n-topics {k}": {"method": "kmeans", "n_topics": k},
        "kbatch --method kmeans --n-topics auto": {"method": "kmeans"},
        "kbatch --method kmeans --n-topics 20": {"method": "kmeans", "n_topics": 20},
        "kbatch --method ctm --n-topics 20": {"method": "ctm", "n_topics": 20},
    }
    tokens = work / f"topics-{len(contenders)}" / "_tokens"  # the first kbatch run's noun documents
    for name, options in runs.items():
        contenders[name] = in_child(kbatch_run, "topics", corpus, str(work / f"topics-{len(contenders)}"), {**common, **options})
    documents = pd.read_parquet(tokens).tokens.map(lambda t: [] if t is None else list(t)).tolist()
    model = resolve_model().describe()["name"]
    print(f"\nTopics of {len(reviews):,} NSMC reviews, same vectors ({model}); quality on the same MeCab noun documents")
    print(f"{'':42} {'topics':>6} {'outliers':>14} {'NPMI':>7} {'diversity':>9} {'seconds':>8} {'vs BERTopic':>11}  peak memory")
    for name, found in contenders.items():
        coherence, diversity = quality(found["words"], documents)
        speed = bertopic["seconds"] / found["seconds"]
        outliers = f"{found['outliers']:,} ({found['outliers'] / len(reviews):.0%})"
        print(f"{name:42} {len(found['words']):6} {outliers:>14} {coherence:7.3f} {diversity:9.3f} {found['seconds']:8.1f} "
              f"{speed:10.2f}x  {memory(found)}")
    auto = contenders["kbatch --method kmeans --n-topics auto"]["manifest"]["n_topics_chosen"]
    print(f"  auto: {auto}")


def gold_corpora() -> dict[str, pd.DataFrame]:
    """``text`` and ``gold`` topic of KorSTS's sentences (their genre) and of synthetic catalog offers (their category)."""
    files = [shared_data_dir() / "korsts" / name for name in ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv")]
    if not all(f.is_file() for f in files):
        sys.exit(f"bench: no KorSTS at {files[0].parent}; set KBATCH_SHARED_DATA to the shared data folder or pass --no-gold")
    sts = pd.concat([pd.read_csv(f, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str) for f in files])
    _, offers = make_catalog(CATALOG_PRODUCTS)
    # make_catalog's products, drawn again from the same seed, name each product's category.
    products = itertools.islice(catalog_products(np.random.default_rng(0)), CATALOG_PRODUCTS)
    category = {p.product_id: p.line.category[0] for p in products}
    return {
        "KorSTS by genre": pd.DataFrame({"text": sts.sentence1, "gold": sts.genre.replace({"main-forums": "main-forum"})}),
        "catalog offers by category": pd.DataFrame({"text": offers.title, "gold": offers.product_id.map(category)}),
    }


def embed_texts(work: Path, name: str, texts: list[str]) -> np.ndarray:
    """Vectors of ``texts`` in their order, by ``kbatch embed`` (kept in the work folder)."""
    source, vectors = work / f"{name}.parquet", work / f"{name}-vectors"
    pd.DataFrame({"id": [f"d{i}" for i in range(len(texts))], "text": texts}).to_parquet(source)
    with open(os.devnull, "w") as quiet, open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
        embed(str(source), str(vectors), id_col="id", client=cluster.client, progress=False, log=quiet)
    matrix, _ = vector_matrix(pq.read_table(vectors, columns=["embedding"]).column("embedding").combine_chunks())
    return matrix


def outlier_rows(texts: list[str], vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Each contender's topic per document (-1: outlier): kbatch's HDBSCAN at every percentile, BERTopic at every threshold."""
    from bertopic import BERTopic
    from bertopic.vectorizers import ClassTfidfTransformer
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    rows = {}
    for percentile in PERCENTILES:
        model, _ = fit_hdbscan(vectors, None, HDBSCAN_DIMS, None, 0, percentile)
        name = "kbatch --outliers keep" if percentile is None else f"kbatch --outliers nearest, percentile {percentile}"
        rows[name] = model.assign(vectors)[0]
    vectorizer = CountVectorizer(tokenizer=nouns_tokenizer(), lowercase=False, token_pattern=None)
    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=0)  # BERTopic's, seeded
    # Without an embedding model, language="english" (the default) would strip every Hangul character before c-TF-IDF.
    bertopic = BERTopic(language="multilingual", umap_model=umap, vectorizer_model=vectorizer,
                        ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True))
    assigned, _ = bertopic.fit_transform(texts, vectors)
    rows["BERTopic defaults"] = np.asarray(assigned)
    for threshold in THRESHOLDS:
        reduced = bertopic.reduce_outliers(texts, assigned, strategy="embeddings", embeddings=vectors, threshold=threshold)
        rows[f"BERTopic + reduce_outliers(embeddings, threshold={threshold})"] = np.asarray(reduced)
    return rows


def gold_bench(work: Path, reviews: pd.DataFrame) -> None:
    from sklearn.metrics import normalized_mutual_info_score

    corpora = {name: (frame, embed_texts(work, f"gold-{i}", frame.text.tolist())) for i, (name, frame) in enumerate(gold_corpora().items())}
    corpora["NSMC reviews (no gold)"] = (reviews.assign(gold=None), np.load(work / "vectors.npy"))
    print("\nOutliers against gold topics: NMI with the outliers as a label of their own (same vectors)")
    print(f"{'':60} {'topics':>6} {'outliers':>8} {'NMI':>6}")
    for name, (frame, vectors) in corpora.items():
        gold = f", {frame.gold.nunique()} gold topics" if frame.gold.notna().all() else ""
        print(f"{name} ({len(frame):,} documents{gold})")
        for contender, topic in outlier_rows(frame.text.tolist(), vectors).items():
            nmi = f"{normalized_mutual_info_score(frame.gold, topic):6.3f}" if gold else ""
            print(f"  {contender:58} {len(np.unique(topic[topic >= 0])):6} {np.mean(topic < 0):8.1%} {nmi}")


def keyword_bench(work: Path, reviews: pd.DataFrame, model_path: str) -> None:
    corpus = str(work / "keyword-reviews.parquet")
    reviews.to_parquet(corpus)
    print(f"\nKeywords of {len(reviews):,} reviews (top 5, same model and candidates)")
    print(f"{'diversity':>9} {'KeyBERT s':>10} {'kbatch s':>9} {'ratio':>6} {'overlap@5':>9}  peak memory KeyBERT | kbatch")
    for diversity in (0.0, 0.5):
        theirs = in_child(keybert_run, reviews.text.tolist(), model_path, diversity)
        ours = in_child(kbatch_run, "keywords", corpus, str(work / f"keywords-{diversity}"), {"top_n": 5, "diversity": diversity})
        ratio, overlap = theirs["seconds"] / ours["seconds"], overlap_at_5(ours["keywords"], theirs["keywords"])
        print(f"{diversity:9.1f} {theirs['seconds']:10.1f} {ours['seconds']:9.1f} {ratio:5.2f}x {overlap:9.3f}"
              f"  {memory(theirs)} | {memory(ours)}")


def write_million(work: Path, reviews: pd.DataFrame, vectors: np.ndarray, n: int, rows_per_file: int = 50_000) -> tuple[str, str]:
    """``n`` documents: reviews repeated, each copy with a light variation of text and vector."""
    texts_dir, vectors_dir = work / "million-texts", work / "million-vectors"
    texts_dir.mkdir(exist_ok=True)
    vectors_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    base = reviews.text.to_numpy()
    for index, start in enumerate(range(0, n, rows_per_file)):
        rows = np.arange(start, min(n, start + rows_per_file))
        source = rows % len(base)
        endings = np.asarray(ENDINGS, dtype=object)[rng.integers(0, len(ENDINGS), len(rows))]
        texts = [t + e for t, e in zip(base[source], endings, strict=True)]
        noisy = vectors[source] + rng.normal(0, 0.02, (len(rows), vectors.shape[1])).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        ids = pa.array([f"m{r}" for r in rows])
        pq.write_table(pa.table({"id": ids, "text": texts}), texts_dir / f"part-{index:05d}.parquet", row_group_size=20_000)
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(noisy.ravel()), vectors.shape[1])
        pq.write_table(pa.table({"id": ids, "embedding": embedding}), vectors_dir / f"part-{index:05d}.parquet", row_group_size=20_000)
    return str(texts_dir), str(vectors_dir)


def million_bench(work: Path, reviews: pd.DataFrame, n: int) -> None:
    vectors = np.load(work / "vectors.npy")
    start = time.perf_counter()
    texts, vectors_dir = write_million(work, reviews, vectors, n)
    print(f"\nScale: {n:,} documents (written in {time.perf_counter() - start:.0f} s)")
    for method, n_topics in (("hdbscan", "auto"), ("minibatch", 20)):
        found = in_child(kbatch_run, "topics", texts, str(work / f"million-{method}"),
                         {"embeddings": vectors_dir, "id_col": "id", "method": method, "n_topics": n_topics})
        m = found["manifest"]
        steps = ", ".join(f"{k} {v:.0f}" for k, v in m["seconds"].items() if k != "total")
        print(f"  --method {method:9} --n-topics {n_topics:4} {found['seconds']:6.0f} s ({n / found['seconds']:,.0f} docs/s; {steps} s); "
              f"NPMI {m['metrics']['npmi']:.3f}, diversity {m['metrics']['topic_diversity']:.3f}; "
              f"peak MiB: client {found['client_mib']:,}, workers {found['worker_mib']}")
        print(f"    largest worker peak {max(found['worker_mib']) / 1024:.2f} GiB (bar: 4 GiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="reviews for the topic comparison (default: 10,000)")
    parser.add_argument("--keyword-docs", type=int, default=2_000, help="reviews for the keyword comparison (default: 2,000)")
    parser.add_argument("--million", type=int, default=1_000_000, help="documents for the scale run; 0 skips it")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (default: the shared data folder)")
    parser.add_argument("--work", help="work folder, kept so the embeddings are reused (default: a temporary one)")
    parser.add_argument("--no-gold", action="store_true", help="skip the outliers against gold topics (KorSTS, catalog)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    reviews = read_reviews(args.data, ["review_id", "text"]).head(args.docs).reset_index(drop=True)
    model_path = resolve_model().path
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        topic_bench(work, reviews, model_path)
        if not args.no_gold:
            gold_bench(work, reviews)
        keyword_bench(work, reviews.head(args.keyword_docs), model_path)
        if args.million:
            million_bench(work, reviews, args.million)
    return 0


if __name__ == "__main__":
    sys.exit(main())
