"""``kbatch match``: exact top-k cosine between two tables (or within one), at catalog scale.

Both sides are embedded with ``embed`` (or an ``embed`` output is used as it is), then each
left partition is scored against the whole right side block by block on a worker (the GPU
when the worker has one). Each worker holds the right side's vectors once; nothing ever
holds a left × right matrix.

>>> match("offers.parquet", "catalog.parquet", "out/matches", id_col="product_id", top_k=5)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.commands.embed import embed
from kbatch.engine.cluster import Cluster
from kbatch.engine.config import ClusterConfig, load_cluster_config
from kbatch.engine.frame import RunOptions, check_output_apart, connect, partition_record, run_command
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Prepared, run_partitions
from kbatch.errors import InputError
from kbatch.io.identity import piece_digest
from kbatch.io.reader import Piece, plan_input, read_piece, read_piece_table
from kbatch.io.writer import MANIFEST, OutputDir, PartitionWriter, atomic_path
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages.encode import vector_matrix
from kbatch.vectors.incremental import PreviousMatches, side_digest

# Left rows per task: big enough for efficient matrix products, small enough for memory.
MATCH_PARTITION_ROWS = 4096
# --spec-aware: cosine candidates per wanted match, and the score lost per conflicting spec
# (more than the cosine gap between products that differ in one spec; bench/match.py).
SPEC_CANDIDATES = 4
SPEC_PENALTY = 0.1


@dataclass(frozen=True)
class Side:
    """One side's vectors as written by ``embed``: where, which model, how many rows."""

    directory: str
    model: dict
    vectors: dict  # what makes two sides' vectors comparable: model, pooling, normalization, dtype, quantization
    rows: int
    duplicate_ids: int
    params_key: str  # changes when the vectors do


def match(
    left,
    right=None,
    output: str | os.PathLike[str] = "out/matches",
    *,
    top_k: int = 10,
    min_score: float | None = None,
    spec_aware: bool = False,
    index: str = "exact",
    model: str | None = None,
    trust_remote_code: bool = False,
    cache: str | os.PathLike[str] | None = None,
    previous: str | os.PathLike[str] | None = None,
    text_col: str = "text",
    id_col: str | None = None,
    partition_rows: int | None = None,
    overwrite: bool = False,
    cluster: ClusterConfig | str | os.PathLike[str] | None = None,
    client=None,
    report: str | os.PathLike[str] | None = None,
    progress: bool = True,
    log=sys.stderr,
) -> RunResult:
    """Top ``top_k`` right rows for every left row by cosine; ``right=None`` matches ``left``
    within itself (a row never matches itself).

    ``left``/``right`` are tables (embedded first, into ``output/_embeddings``) or output
    directories of ``kbatch embed`` (used as they are; both sides must come from one model).
    Writes ``left_id, right_id, score, rank``. ``spec_aware`` re-ranks the best cosine
    candidates, lowering the score by :data:`SPEC_PENALTY` for every spec the two titles
    disagree on (256GB vs 512GB, S24 vs S23, 블랙 vs 화이트; :mod:`kbatch.analyzers.specs`).
    ``index="ann"`` searches an HNSW index of the right side instead (:mod:`kbatch.vectors.ann`).
    ``cache`` is an embedding cache directory for the tables' embedding (:mod:`kbatch.vectors.cache`).
    ``previous`` is an earlier output of the same match (last night's): against the same
    right side, left rows with unchanged vectors keep its matches and are not searched again.
    """
    if top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}")
    if index not in ("exact", "ann"):
        raise InputError(f"--index must be exact or ann, got {index!r}")
    sides = (left, right) if right is not None else (left,)
    for side in sides:
        check_output_apart(output, side)
    if model is not None or any(_embed_manifest(side) is None for side in sides):
        resolve_model(model or DEFAULT_MODEL, trust_remote_code=trust_remote_code)  # refused or missing: before any cluster starts
    started = time.perf_counter()
    out = Path(output)
    config = cluster if isinstance(cluster, ClusterConfig) else load_cluster_config(cluster)
    with connect(config, client, log) as connected:
        embed_options = {"text_col": text_col, "id_col": id_col, "model": model, "trust_remote_code": trust_remote_code,
                         "client": connected.client, "progress": progress, "log": log, "overwrite": overwrite, "cache": cache}
        left_side = embedded_side(left, out / "_embeddings" / "left", **embed_options)
        right_side = left_side if right is None else embedded_side(right, out / "_embeddings" / "right", **embed_options)
        if left_side.vectors != right_side.vectors:
            differ = ", ".join(k for k in left_side.vectors if left_side.vectors[k] != right_side.vectors[k])
            raise InputError(f"the two sides' vectors are not comparable: different {differ}; embed both the same way")
        if right_side.rows == 0:
            raise InputError("the right side has no rows to match against")
        self_match = right is None
        specs = None
        if spec_aware:
            left_specs = write_specs(left, out / "_specs" / "left.parquet", text_col)
            specs = (left_specs, left_specs if self_match else write_specs(right, out / "_specs" / "right.parquet", text_col))
        digest = side_digest(right_side.directory)
        # The right side by content: a catalog changed in place makes every left partition stale.
        params = {"right": digest if not self_match else None, "model": left_side.model["fingerprint"],
                  "top_k": top_k, "min_score": min_score, "spec_aware": spec_aware, "index": index}
        ann_path = None
        if index == "ann":
            from kbatch.vectors.ann import build_index

            target = str(out / "_index" / f"{right_side.params_key}.faiss")
            # One task builds the index with every core of its machine (faiss threads), once.
            ann_path = target if Path(target).is_file() else connected.client.submit(
                build_index, right_side.directory, target, None, resources=connected.routing.cpu, pure=False
            ).result()

        earlier = None if self_match else PreviousMatches.find(previous, params, digest)

        def work(cluster: Cluster, pieces: Sequence[Piece], out_dir: OutputDir, key: str) -> list[dict]:
            metadata = {"params": key, "model": left_side.model}
            finish_args = (right_side.directory, top_k, min_score, self_match, specs, ann_path, cluster.routing.torch_threads,
                           PartitionWriter(str(out_dir.path)), metadata, earlier)
            return run_partitions(cluster, pieces, prepare=read_left, prepare_args=(), finish=match_and_write,
                                  finish_args=finish_args, progress=progress, label="left rows")

        def describe(record: dict) -> dict:
            sides = {"left": left_side.directory, "right": right_side.directory, "self_match": self_match}
            duplicates = {"left": left_side.duplicate_ids, "right": right_side.duplicate_ids}
            return {"model": left_side.model, "sides": sides, "side_duplicate_ids": duplicates, "right_digest": digest,
                    "previous": earlier.matches if earlier else None,
                    "output_schema": {"left_id": "id", "right_id": "id", "score": "float32", "rank": "int16"}}

        run = RunOptions(text_col="embedding", id_col="id", partition_rows=partition_rows or MATCH_PARTITION_ROWS,
                         overwrite=overwrite, client=connected.client, report=report, progress=progress, log=log)
        return run_command("match", left_side.directory, out, params, run, work, describe,
                           text_is_string=False, check_duplicate_ids=False, started=started)


def embedded_side(source, target: Path, *, model: str | None, **options) -> Side:
    """``source`` itself if it is an ``embed`` output, else ``source`` embedded into ``target``."""
    manifest = _embed_manifest(source)
    if manifest is not None:
        trusted = options.get("trust_remote_code", False)
        if model is not None and resolve_model(model, trust_remote_code=trusted).fingerprint != manifest["model"]["fingerprint"]:
            raise InputError(f"{source} holds vectors of {manifest['model']['name']}, not of --model {model}")
        directory = str(source)
    else:
        result = embed(source, target, model=model or DEFAULT_MODEL, **options)
        print(f"kbatch {result.summary()}", file=options["log"])
        manifest, directory = result.manifest, str(target)
    vectors = {key: manifest["params"][key] for key in ("model", "pooling", "normalize", "dtype", "quantize")}
    return Side(directory, manifest["model"], vectors, manifest["rows_done"], manifest["duplicate_ids"], manifest["params_key"])


def write_specs(source, target: Path, text_col: str) -> str:
    """Spec tokens of every row of ``source``, in row order, as a Parquet ``specs`` column."""
    from kbatch.analyzers.specs import extract_specs

    if _embed_manifest(source) is not None:
        raise InputError("--spec-aware reads the titles: pass the tables, not embed outputs")
    plan = plan_input(source, text_col)
    texts = pd.concat([read_piece(piece, text_col, None)["text"] for piece in plan.pieces], ignore_index=True)
    specs = extract_specs(texts.fillna("").astype(str).tolist())
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        pq.write_table(pa.table({"specs": pa.array([sorted(s) for s in specs], pa.list_(pa.string()))}), tmp)
    return str(target)


@lru_cache(maxsize=2)
def specs_of(path: str) -> list[frozenset[str]]:
    """A side's spec tokens, once per worker."""
    return [frozenset(s) for s in pq.read_table(path).column("specs").to_pylist()]


def _embed_manifest(source) -> dict | None:
    if isinstance(source, (list, tuple)) or not Path(source).is_dir() or not (Path(source) / MANIFEST).is_file():
        return None
    manifest = json.loads((Path(source) / MANIFEST).read_text())
    return manifest if manifest.get("command") == "embed" and manifest.get("status") == "complete" else None


def read_vectors(directory: str, columns: Sequence[str] = ("id", "embedding")) -> pa.Table:
    """The ``embed`` output in ``directory`` as one table, rows in input order."""
    names = sorted(p.name for p in Path(directory).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(Path(directory) / name, columns=list(columns)) for name in names])


@lru_cache(maxsize=1)
def right_ids(directory: str) -> pa.Array:
    """The right side's ids, once per worker (all an approximate search needs besides its index)."""
    return read_vectors(directory, ["id"]).column("id").combine_chunks()


@lru_cache(maxsize=1)
def right_vectors(directory: str, device: str):
    """The right side's vectors and has-vector mask as tensors on ``device``, once per worker."""
    import torch

    matrix, valid = vector_matrix(read_vectors(directory, ["embedding"]).column("embedding").combine_chunks())
    return torch.from_numpy(matrix).to(device), torch.from_numpy(valid).to(device)


def rerank_by_specs(
    scores: np.ndarray, where: np.ndarray, left_specs: Sequence[frozenset[str]], right_specs: Sequence[frozenset[str]], top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lower each candidate's score by :data:`SPEC_PENALTY` per conflicting spec; keep the best ``top_k``."""
    from kbatch.analyzers.specs import spec_conflicts

    conflicts = np.zeros(scores.shape, dtype=np.float32)
    for i, j in zip(*np.nonzero(where >= 0), strict=True):
        conflicts[i, j] = spec_conflicts(left_specs[i], right_specs[where[i, j]])
    adjusted = scores - SPEC_PENALTY * conflicts
    order = np.argsort(-adjusted, axis=1, kind="stable")[:, :top_k]
    return np.take_along_axis(adjusted, order, axis=1), np.take_along_axis(where, order, axis=1)


@dataclass(frozen=True)
class LeftBlock:
    """One left partition: ids, vectors (zeros where missing), and its first row's number."""

    ids: pa.Array
    vectors: np.ndarray
    has_vector: np.ndarray
    row_offset: int


def read_left(piece: Piece) -> Prepared:
    """Read one left partition of an ``embed`` output as arrays (no Python objects per row)."""
    start = time.perf_counter()
    table = read_piece_table(piece, piece.columns)
    vectors, has_vector = vector_matrix(table.column("embedding").combine_chunks())
    block = LeftBlock(table.column("id").combine_chunks(), vectors, has_vector, piece.row_offset)
    return Prepared(block, {"read": time.perf_counter() - start}, piece_digest(piece))


def match_and_write(
    prepared: Prepared, index: int, right_dir: str, top_k: int, min_score: float | None,
    self_match: bool, specs: tuple[str, str] | None, ann_path: str | None, threads: int | None, writer: PartitionWriter,
    metadata: dict, previous: PreviousMatches | None = None,
) -> dict:
    """The finishing task of one left partition: top-k against the right side (for the rows
    ``previous`` cannot answer), written atomically."""
    import torch

    from kbatch.vectors.topk import topk_blockwise

    left, seconds = prepared.data, prepared.seconds
    start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    ids = right_ids(right_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    right, valid = right_vectors(right_dir, device) if not ann_path else (None, None)  # an index needs no vectors here
    seconds["load_right"] = time.perf_counter() - start
    start = time.perf_counter()
    searched = np.arange(len(left.ids))
    reused = None
    if previous is not None:
        same, reused = previous.reusable(left.ids, left.vectors, left.has_vector)
        searched = np.flatnonzero(~same)
    candidates = top_k * SPEC_CANDIDATES if specs else top_k
    self_offset = left.row_offset if self_match else None
    vectors = left.vectors[searched]
    if ann_path:
        from kbatch.vectors.ann import search

        scores, where = search(ann_path, vectors, candidates, self_offset, threads)
    else:
        scores, where = topk_blockwise(torch.from_numpy(vectors).to(device), right, candidates, valid=valid, self_offset=self_offset)
        scores, where = scores.cpu().numpy(), where.cpu().numpy()
    if specs:
        left_specs = specs_of(specs[0])[left.row_offset : left.row_offset + len(left.ids)]
        scores, where = rerank_by_specs(scores, where, [left_specs[i] for i in searched], specs_of(specs[1]), top_k)
    keep = (where >= 0) & left.has_vector[searched][:, None]
    if min_score is not None:
        keep &= scores >= min_score
    rows, ranks = np.nonzero(keep)
    table = pa.table({
        "left_id": left.ids.take(pa.array(searched[rows])),
        "right_id": ids.take(pa.array(where[rows, ranks])),
        "score": pa.array(scores[rows, ranks].astype(np.float32)),
        "rank": pa.array((ranks + 1).astype(np.int16)),
        "position": pa.array(searched[rows].astype(np.int64)),
    })
    if reused is not None:
        table = pa.concat_tables([table, reused.cast(table.schema)]).sort_by([("position", "ascending"), ("rank", "ascending")])
    table = table.drop_columns(["position"])
    seconds["TopK"] = time.perf_counter() - start
    skipped = pd.DataFrame({"skip_reason": np.where(left.has_vector, None, "no_vector")})
    kept = {"kept_from_previous": len(left.ids) - len(searched)} if previous is not None else {}
    partition = partition_record(index, skipped, prepared, matches=table.num_rows, **kept)
    record = {**metadata, "partition": partition}
    writer.write(index, table, record)
    return record
