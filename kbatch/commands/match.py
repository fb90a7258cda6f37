"""``kbatch match``: exact top-k cosine between two tables (or within one), at catalog scale.

Both sides are embedded with ``embed`` (or an ``embed`` output is used as it is), then each
left partition is scored against the whole right side block by block on a worker (the GPU
when the worker has one). Each worker holds the right side's vectors once; nothing ever
holds a left × right matrix.

>>> import pandas as pd
>>> result = match("examples/offers.parquet", "examples/catalog.parquet", "out/matches", text_col="title", id_col="sku",
...                top_k=1, progress=False)
>>> result.manifest["counts"]
{'matches': 420}
>>> best = pd.read_parquet("out/matches").set_index("left_id").right_id
>>> float(round((best == pd.read_parquet("examples/offers.parquet").set_index("sku").true_sku).mean(), 2))   # right at rank 1
0.71
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace

import pandas as pd
import pyarrow as pa

from kbatch.commands.embed import embed
from kbatch.commands.embedding import check_prompts
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import Partitioned, RunOptions, open_command, run_partitioned, use_cluster_storage
from kbatch.engine.manifest import RunResult
from kbatch.engine.resume import check_output_apart
from kbatch.engine.run import Pipeline
from kbatch.errors import InputError
from kbatch.io import storage
from kbatch.io.reader import plan_input, read_piece
from kbatch.io.writer import MANIFEST
from kbatch.models.resolve import DEFAULT_MODEL, NO_PROMPT, resolve_model
from kbatch.stages.read import ReadVectors
from kbatch.stages.topk import TopK
from kbatch.vectors.incremental import PreviousMatches, side_digest

# Left rows per task: big enough for efficient matrix products, small enough for memory.
MATCH_PARTITION_ROWS = 4096


@dataclass(frozen=True)
class Side:
    """One side's vectors as written by ``embed``: where, which model, how many rows."""

    directory: str
    model: dict
    vectors: dict  # what makes two sides' vectors comparable: model, pooling, normalization, dtype, quantization
    rows: int
    duplicate_ids: int
    params_key: str  # changes when the vectors do

    @property
    def prompt(self) -> str:
        """The name of the prompt the side was embedded with (``none`` for none)."""
        return (self.model.get("prompt") or {}).get("name", NO_PROMPT)


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
    prompt: str | None = None,
    right_prompt: str | None = None,
    **options,
) -> RunResult:
    """Top ``top_k`` right rows for every left row by cosine; ``right=None`` matches ``left``
    within itself (a row never matches itself).

    ``left``/``right`` are tables (embedded first, into ``output/_embeddings``) or output
    directories of ``kbatch embed`` (used as they are; both sides must come from one model).
    Writes ``left_id, right_id, score, rank``. ``spec_aware`` re-ranks the best cosine
    candidates, lowering the score by :data:`~kbatch.stages.topk.SPEC_PENALTY` for every spec
    the two titles disagree on (256GB vs 512GB, S24 vs S23, 블랙 vs 화이트; :mod:`kbatch.analyzers.specs`).
    ``index="ann"`` searches an HNSW index of the right side instead (:mod:`kbatch.vectors.ann`).
    ``cache`` is an embedding cache directory for the tables' embedding (:mod:`kbatch.vectors.cache`).
    ``previous`` is an earlier output of the same match (last night's): against the same
    right side, left rows with unchanged vectors keep its matches and are not searched again.
    ``prompt`` names the model's prompt for the tables' texts (None: its default, ``"none"``:
    no prompt); ``right_prompt`` another one for the right table (default: ``prompt``), as
    asymmetric models (e5's ``query``/``passage``) may want for a catalog.
    ``options`` are those of :class:`~kbatch.engine.frame.RunOptions`; ``partition_rows`` is
    left rows per matching task (default :data:`MATCH_PARTITION_ROWS`).
    """
    if top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}")
    if index not in ("exact", "ann"):
        raise InputError(f"--index must be exact or ann, got {index!r}")
    if right is None and right_prompt is not None:
        raise InputError("`right_prompt` is for a right table: a table matched within itself has one prompt, `prompt`")
    run = RunOptions(**options)
    if model is not None:  # refused or missing: before anything is read
        check_prompts(resolve_model(model, trust_remote_code=trust_remote_code), prompt, right_prompt)
    use_cluster_storage(run)
    sides = (left, right) if right is not None else (left,)
    for side in sides:
        check_output_apart(output, side)
    if model is None and any(_embed_manifest(side) is None for side in sides):  # missing: before any cluster starts
        check_prompts(resolve_model(DEFAULT_MODEL), prompt, right_prompt)
    started, out = time.perf_counter(), storage.location(output)
    with open_command("match", out, run) as (cluster, _):
        nested = replace(run, client=cluster.client, report=None, partition_rows=None)
        embedding = {"model": model, "trust_remote_code": trust_remote_code, "cache": cache, "prompt": prompt}
        left_side = embedded_side(left, storage.join(out, "_embeddings", "left"), embedding, nested)
        right_side = left_side if right is None else embedded_side(
            right, storage.join(out, "_embeddings", "right"), {**embedding, "prompt": right_prompt or prompt}, nested)
        search = _Search(left_side, right_side, top_k, min_score, index, right is None,
                         _spec_files(left, right, out, run.text_col) if spec_aware else None)
        command = search.command(cluster, out, previous)
        blocks = replace(nested, text_col="embedding", id_col="id", partition_rows=run.partition_rows or MATCH_PARTITION_ROWS)
        return run_partitioned(command, left_side.directory, output, blocks, started)


@dataclass(frozen=True)
class _Search:
    """What one match searches: the two embedded sides and how."""

    left: Side
    right: Side
    top_k: int
    min_score: float | None
    index: str
    self_match: bool
    specs: tuple[str, str] | None

    def command(self, cluster: Cluster, out: str, previous) -> Partitioned:
        """The partitioned matching of left blocks, keyed by the right side's content: a catalog
        changed in place makes every left partition stale."""
        if self.left.vectors != self.right.vectors:
            differ = ", ".join(k for k in self.left.vectors if self.left.vectors[k] != self.right.vectors[k])
            raise InputError(f"the two sides' vectors are not comparable: different {differ}; embed both the same way")
        if self.right.rows == 0:
            raise InputError("the right side has no rows to match against")
        digest = side_digest(self.right.directory)
        params = {"right": digest if not self.self_match else None, "model": self.left.model["fingerprint"], "top_k": self.top_k,
                  "min_score": self.min_score, "spec_aware": self.specs is not None, "index": self.index}
        ann_path = self._index(cluster, out) if self.index == "ann" else None
        earlier = None if self.self_match else PreviousMatches.find(previous, params, digest)
        top_k = TopK(self.right.directory, self.top_k, self.min_score, self.self_match, self.specs, ann_path,
                     cluster.routing.torch_threads, earlier)
        pipeline = Pipeline(ReadVectors(), (top_k,), ("left_id", "right_id", "score", "rank"))

        def describe(record: dict) -> dict:
            sides = {"left": self.left.directory, "right": self.right.directory, "self_match": self.self_match,
                     "prompts": {"left": self.left.model.get("prompt"), "right": self.right.model.get("prompt")}}
            duplicates = {"left": self.left.duplicate_ids, "right": self.right.duplicate_ids}
            return {"model": self.left.model, "sides": sides, "side_duplicate_ids": duplicates, "right_digest": digest,
                    "previous": earlier.matches if earlier else None}

        return Partitioned("match", params, lambda cluster: (pipeline, {"model": self.left.model}), describe,
                           text_is_string=False, check_duplicate_ids=False, label="left rows")

    def _index(self, cluster: Cluster, out: str) -> str:
        """The right side's HNSW index, built once by one task with every core of its machine (faiss threads)."""
        from kbatch.vectors.ann import build_index

        target = storage.join(out, "_index", f"{self.right.params_key}.faiss")
        if storage.is_file(target):
            return target
        return cluster.client.submit(build_index, self.right.directory, target, None, resources=cluster.routing.cpu,
                                     pure=False).result()


def _spec_files(left, right, out: str, text_col: str) -> tuple[str, str]:
    left_specs = write_specs(left, storage.join(out, "_specs", "left.parquet"), text_col)
    return left_specs, left_specs if right is None else write_specs(right, storage.join(out, "_specs", "right.parquet"), text_col)


def embedded_side(source, target: str | os.PathLike[str], embedding: dict, run: RunOptions) -> Side:
    """``source`` itself if it is an ``embed`` output, else ``source`` embedded into ``target``
    (``embedding``: ``embed``'s ``model``, ``trust_remote_code``, ``cache`` and ``prompt``)."""
    manifest = _embed_manifest(source)
    model = embedding.get("model")
    if manifest is None:
        result = embed(source, target, **{**embedding, "model": model or DEFAULT_MODEL}, **run.as_kwargs())
        print(f"kbatch {result.summary()}", file=run.log)
        return _side(result.manifest, storage.location(target))
    trusted = embedding.get("trust_remote_code", False)
    if model is not None and resolve_model(model, trust_remote_code=trusted).fingerprint != manifest["model"]["fingerprint"]:
        raise InputError(f"{source} holds vectors of {manifest['model']['name']}, not of --model {model}")
    side = _side(manifest, storage.location(source))
    if embedding.get("prompt") not in (None, side.prompt):
        raise InputError(f"{source} holds vectors made with prompt {side.prompt!r}, not {embedding['prompt']!r}")
    return side


def _side(manifest: dict, directory: str) -> Side:
    """The side an ``embed`` output in ``directory`` is, from its manifest."""
    vectors = {key: manifest["params"][key] for key in ("model", "pooling", "normalize", "dtype", "quantize")}
    return Side(directory, manifest["model"], vectors, manifest["rows_done"], manifest["duplicate_ids"], manifest["params_key"])


def write_specs(source, target: str, text_col: str) -> str:
    """Spec tokens of every row of ``source``, in row order, as a Parquet ``specs`` column."""
    from kbatch.analyzers.specs import extract_specs

    if _embed_manifest(source) is not None:
        raise InputError("--spec-aware reads the titles: pass the tables, not embed outputs")
    plan = plan_input(source, text_col)
    texts = pd.concat([read_piece(piece, text_col, None)["text"] for piece in plan.pieces], ignore_index=True)
    specs = extract_specs(texts.fillna("").astype(str).tolist())
    storage.write_parquet(pa.table({"specs": pa.array([sorted(s) for s in specs], pa.list_(pa.string()))}), target)
    return target


def _embed_manifest(source) -> dict | None:
    if isinstance(source, (list, tuple)) or not storage.is_file(storage.join(storage.location(source), MANIFEST)):
        return None
    manifest = json.loads(storage.read_bytes(storage.join(storage.location(source), MANIFEST)))
    return manifest if manifest.get("command") == "embed" and manifest.get("status") == "complete" else None
