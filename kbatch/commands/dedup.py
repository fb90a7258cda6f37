"""``kbatch dedup``: exact copies by normalized-text hash, then near-duplicates by cosine, SemDeDup-style.

The exact pass hashes every row; the semantic pass embeds (or takes ``embeddings``), fits
k-means on a sample, writes every vector to the buckets of its nearest centroids, compares
rows only within a bucket tile by tile, and joins pairs at or above ``threshold`` into groups
that keep one row each (:mod:`kbatch.duplicates`). Writes ``kept/`` (ids, or the rows with
``write_rows``), ``groups.parquet`` (``group_id, id, representative_id, cosine``),
``thresholds.html`` (the duplicate share by threshold) and ``_kbatch.json``.

>>> result = dedup("examples/reviews.parquet", "out/reviews-dedup-exact", exact_only=True, id_col="review_id", progress=False)
>>> {k: result.manifest["counts"][k] for k in ("rows", "exact_duplicates", "kept")}
{'rows': 2000, 'exact_duplicates': 8, 'kept': 1992}
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from kbatch.commands.embedding import Embedding, check_prompts
from kbatch.commands.topics import document_vectors
from kbatch.duplicates import representatives
from kbatch.duplicates.buckets import Block
from kbatch.duplicates.clusters import default_clusters
from kbatch.duplicates.exact import first_copies
from kbatch.duplicates.forest import components, share_by_threshold, with_edges
from kbatch.duplicates.groups import group_rows, numbered
from kbatch.duplicates.output import GROUPS_SCHEMA, write_groups
from kbatch.duplicates.plot import write_threshold_plot
from kbatch.duplicates.previous import Earlier, KeptSet, read_earlier, write_kept
from kbatch.duplicates.steps import DedupSteps, Semantic
from kbatch.engine.frame import RunOptions, open_command, use_cluster_storage
from kbatch.engine.manifest import RunResult, versions
from kbatch.engine.resume import check_output_apart
from kbatch.errors import InputError
from kbatch.io import storage
from kbatch.io.identity import params_key
from kbatch.io.reader import plan_input
from kbatch.io.writer import OutputDir
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.topicmodel.steps import block_rows

KEEP_MEANING = {
    "centroid": "the member closest to the mean vector of its group",
    "longest": "the member with the longest text (then the earliest)",
    "earliest": "the member that comes first in the input",
}
# The threshold plot spans this much below the chosen threshold (never below PLOT_LOWEST), in PLOT_STEPS steps up to 1.
PLOT_SPAN, PLOT_LOWEST, PLOT_STEPS = 0.10, 0.5, 20
PLOT_FILE = "thresholds.html"
_NO_EDGES = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))


def dedup(
    source,
    output: str | os.PathLike[str] = "out/dedup",
    *,
    threshold: float = 0.95,
    exact_only: bool = False,
    clusters: int | None = None,
    assignments: int = 2,
    keep: str = "centroid",
    embeddings: str | os.PathLike[str] | None = None,
    model: str | None = None,
    trust_remote_code: bool = False,
    prompt: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    previous: str | os.PathLike[str] | None = None,
    write_rows: bool = False,
    seed: int = 0,
    **options,
) -> RunResult:
    """Remove exact and near duplicates from the ``text_col`` of ``source``.

    Rows whose normalized texts are identical are one group; unless ``exact_only``, rows whose
    vectors have cosine ``≥ threshold`` (directly or through a chain of such rows) are too. Each
    group keeps one row by ``keep`` (:data:`KEEP_MEANING`). ``clusters`` (default about √rows)
    and ``assignments`` (nearest centroids per row) decide which rows are compared.
    ``embeddings`` reuses vectors (an ``embed`` output, or Parquet with ``id`` and ``embedding``
    in source row order). ``prompt`` names the model's prompt (None: its default, ``"none"``:
    no prompt). ``previous`` is last night's ``dedup`` output: tonight's rows are
    checked against every row kept on earlier nights, which are never dropped. ``options`` are
    those of :class:`~kbatch.engine.frame.RunOptions`.
    """
    _check(threshold, clusters, assignments, keep)
    run = RunOptions(**options)
    if not exact_only and model is not None:  # refused or missing: before anything is read
        check_prompts(resolve_model(model, trust_remote_code=trust_remote_code), prompt)
    use_cluster_storage(run)
    started, out = time.perf_counter(), storage.location(output)
    for read in (source, embeddings) if embeddings is not None else (source,):
        check_output_apart(out, read)
    if previous is not None and storage.location(previous) == out:
        raise InputError("`previous` is the output itself; give last night's output and a new one for tonight")
    earlier = read_earlier(previous)
    if not exact_only and model is None and embeddings is None:
        check_prompts(resolve_model(DEFAULT_MODEL), prompt)  # missing: before any cluster starts
    plan = plan_input(source, run.text_col, run.id_col, run.partition_rows)
    params = {"command": "dedup", "input": plan.fingerprint["paths_sha256"], "threshold": threshold, "exact_only": exact_only,
              "clusters": clusters, "assignments": assignments, "keep": keep, "write_rows": write_rows, "seed": seed,
              "previous": [s.kept for s in earlier.sets], "text_col": run.text_col, "id_col": run.id_col}
    seconds: dict[str, float] = {}
    with open_command("dedup", out, run) as (cluster, _):
        vectors = None
        if not exact_only:
            step = time.perf_counter()
            embedding = {"model": model, "trust_remote_code": trust_remote_code, "cache": cache, "prompt": prompt}
            nested = replace(run, client=cluster.client, report=None)
            vectors = document_vectors(source, embeddings, storage.join(out, "_embeddings"), embedding, nested)
            seconds["embed"] = time.perf_counter() - step
            _check_vectors(vectors, plan.rows, earlier)
            params["vectors"] = vectors[3]
        key = params_key(params)
        OutputDir(out).prepare(key, 0, run.overwrite)
        steps = DedupSteps(cluster, run.progress, seconds)
        hashed = steps.hashes(plan.pieces, run.text_col, run.id_col, vectors[2].spec if vectors is not None else None)
        before, rows = earlier.rows, plan.rows
        nodes, everyone = before + rows, np.arange(before + rows)
        key_first = first_copies(np.concatenate([earlier.hashes, hashed.keys]),
                                 np.concatenate([np.ones(before, dtype=bool), hashed.has_text]))
        same_text = everyone.copy()  # rows embed saw as one text have one vector: only the first is compared
        same_text[before:] = before + first_copies(hashed.texts, hashed.has_text)
        copies = key_first != everyone
        exact = int(copies[before:].sum())
        semantic = None
        if vectors is not None:
            unseen = before + np.flatnonzero(hashed.has_text & ~hashed.seen)
            semantic = _semantic(steps, earlier, vectors, same_text, unseen, threshold, clusters, assignments, seed, out, cluster)
        graph = with_edges(semantic.forest if semantic else _NO_EDGES, everyone[copies], key_first[copies])
        grouping = group_rows(components(graph, nodes, threshold), same_text, before)
        members = grouping.members
        lengths = np.concatenate([earlier.lengths, hashed.lengths])
        score = {"longest": lengths[members.rows].astype(np.float32), "earliest": np.zeros(len(members.rows), np.float32)}.get(keep)
        if semantic:
            representative, cosine = steps.represent(semantic.blocks, members, score, before)
        else:
            representative = representatives.choose(members, score if score is not None else np.zeros(len(members.rows)), before)
            cosine = np.ones(len(members.rows), dtype=np.float32)
        per_row = np.ones(nodes, dtype=np.float32)
        per_row[members.rows] = cosine
        per_row[representative] = 1.0  # exactly, not a float sum's 0.99999994
        per_row = per_row[same_text]  # a row with the same normalized text has the same vector
        counts, own = _write(out, grouping.group, representative, per_row, earlier, hashed, plan, run, write_rows, steps, lengths,
                             vectors)
        counts = {"exact_duplicates": exact, "near_duplicates": counts["dropped"] - exact, **counts,
                  "unseen_by_model": int((hashed.has_text & ~hashed.seen).sum()) if vectors is not None else 0}
        shares = []
        if semantic:
            shares = share_by_threshold(graph, nodes, everyone[before:], np.arange(before), semantic.thresholds)
            title = f"Duplicate share by threshold: {rows:,} rows, {counts['dropped']:,} removed at {threshold:g}"
            write_threshold_plot(storage.join(out, PLOT_FILE), shares, threshold, rows, title)
        kept_sets = [s.as_dict(out) for s in (*earlier.sets, own)]
        manifest = _manifest(params, key, plan, counts, keep, semantic, shares, kept_sets, seconds, started, hashed)
        OutputDir(out).write_manifest(manifest)
    return RunResult(storage.shown(output), manifest)


@dataclass(frozen=True)
class _Semantic:
    """The semantic pass's results: the blocks it read, the forest of pairs, the plot's thresholds
    and how the clusters came out."""

    blocks: list[Block]
    forest: tuple[np.ndarray, np.ndarray, np.ndarray]
    thresholds: np.ndarray
    how: dict


def _semantic(steps: DedupSteps, earlier: Earlier, vectors: tuple, same_text: np.ndarray, unseen: np.ndarray, threshold: float,
              clusters: int | None, assignments: int, seed: int, out: str, cluster) -> _Semantic:
    """Bucket and pair every row but those whose normalized text an earlier row has (same vector)
    and those the model cannot see (``unseen``, global rows: their vectors say nothing)."""
    before, rows = earlier.rows, len(same_text) - earlier.rows
    pieces = plan_input(vectors[0], "embedding", "id", block_rows(rows, cluster), text_is_string=False).pieces
    blocks = _earlier_blocks(earlier)
    blocks += [Block(len(blocks) + i, p, before + p.row_offset) for i, p in enumerate(pieces)]
    dim = storage.read_schema(pieces[0].path).field("embedding").type.list_size
    skip = np.union1d(np.flatnonzero(same_text != np.arange(len(same_text))), unseen)
    floor = min(threshold, max(PLOT_LOWEST, threshold - PLOT_SPAN))
    settings = Semantic(clusters or default_clusters(before + rows - len(skip)), assignments, floor, seed)
    forest, how = steps.forest(blocks, skip, settings, storage.join(out, "_buckets"), before + rows, dim)
    thresholds = np.union1d(np.round(np.linspace(floor, 1.0, PLOT_STEPS + 1), 4), [threshold])
    return _Semantic(blocks, forest, thresholds, {**how, "assignments": assignments, "floor": round(floor, 4)})


def _earlier_blocks(earlier: Earlier) -> list[Block]:
    """Blocks of the kept rows of earlier nights that have vectors, numbered as global rows."""
    blocks, offset = [], 0
    for kept, positions in zip(earlier.sets, earlier.positions, strict=True):
        if kept.vectors is not None:
            for piece in plan_input(kept.vectors, "embedding", "id", text_is_string=False).pieces:
                lo, hi = np.searchsorted(positions, [piece.row_offset, piece.row_offset + piece.rows])
                if hi > lo:
                    take = tuple(int(p) for p in positions[lo:hi] - piece.row_offset)
                    blocks.append(Block(len(blocks), piece, offset + int(lo), take))
        offset += len(positions)
    return blocks


def _write(out: str, group: np.ndarray, representative: np.ndarray, per_row: np.ndarray, earlier: Earlier, hashed,
           plan, run: RunOptions, write_rows: bool, steps: DedupSteps, lengths: np.ndarray, vectors) -> tuple[dict, KeptSet]:
    """``groups.parquet``, ``kept/`` and ``_kept.parquet``; the counts and tonight's kept set."""
    before, rows = earlier.rows, plan.rows
    ids = hashed.ids if earlier.ids is None else pa.concat_arrays([earlier.ids.cast(hashed.ids.type), hashed.ids])
    in_group = np.flatnonzero(group[before:] >= 0) + before
    of = representative[group[in_group]]
    write_groups(out, numbered(representative)[group[in_group]], ids.take(pa.array(in_group)), ids.take(pa.array(of)), per_row[in_group])
    dropped = in_group[of != in_group] - before
    columns = _row_columns(plan, run) if write_rows else None
    steps.write_kept(plan.pieces, dropped, storage.join(out, "kept"), run.text_col, run.id_col, columns)
    kept = np.setdiff1d(np.flatnonzero(hashed.has_text), dropped, assume_unique=True)
    path = write_kept(out, kept, hashed.ids.take(pa.array(kept)), hashed.keys[kept], lengths[before + kept])
    counts = {"groups": len(representative), "dropped": len(dropped), "kept": rows - len(dropped),
              "duplicates_of_previous": int((of[of != in_group] < before).sum()), "no_text": int((~hashed.has_text).sum()), "rows": rows}
    return counts, KeptSet(path, vectors[0] if vectors else None, len(kept), _made_with(vectors[2]) if vectors else None)


def _row_columns(plan, run: RunOptions) -> tuple[str, ...]:
    """The columns ``write_rows`` copies: all of a Parquet input's, else those read (text, id, kept columns)."""
    if plan.pieces[0].spans[0].format == "parquet":
        return tuple(storage.read_schema(plan.pieces[0].path).names)
    return tuple(dict.fromkeys([run.text_col, *([run.id_col] if run.id_col else []), *run.keep_cols]))


def _manifest(params: dict, key: str, plan, counts: dict, keep: str, semantic: _Semantic | None, shares: list[dict],
              kept_sets: list[dict], seconds: dict, started: float, hashed) -> dict:
    total = time.perf_counter() - started
    rows, blocks = plan.rows, len(plan.pieces)
    work = sum(v for k, v in seconds.items() if k != "embed")
    no_text = counts["no_text"]
    return {
        "command": "dedup", "status": "complete", "params_key": key, "params": params, "input": plan.fingerprint,
        "embeddings": storage.parent_of(semantic.blocks[-1].piece.path) if semantic else None,
        "threshold": params["threshold"], "exact_only": params["exact_only"],
        "representative": {"keep": keep, "chosen_as": KEEP_MEANING[keep],
                           "earlier_nights": "a row kept on an earlier night always represents its group"},
        "clusters": semantic.how if semantic else None,
        "counts": counts, "duplicate_share": round(counts["dropped"] / rows, 6),
        "thresholds": shares, "kept_sets": kept_sets,
        "partitions_total": blocks, "partitions_done": blocks, "partitions_reused": 0,
        "rows_in": rows, "rows_out": counts["kept"], "rows_done": rows - no_text,
        "rows_skipped": {reason: int((hashed.skip_reason == reason).sum()) for reason in sorted(set(hashed.skip_reason[~hashed.has_text]))},
        "outputs": {"kept": "kept", "groups": "groups.parquet", "plot": PLOT_FILE if shares else None, "kept_set": "_kept.parquet"},
        "output_schema": {"groups": GROUPS_SCHEMA, "kept": "id, or the input's columns with write_rows"},
        "seconds": {"total": round(total, 3), **{k: round(v, 3) for k, v in seconds.items()}},
        "throughput_rows_per_s": {"total": round(rows / total, 2), "processing": round(rows / work, 2) if work else 0.0},
        "versions": versions(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _check(threshold: float, clusters: int | None, assignments: int, keep: str) -> None:
    if not 0 < threshold <= 1:
        raise InputError(f"`threshold` must be in (0, 1], got {threshold}")
    if clusters is not None and clusters < 1:
        raise InputError(f"`clusters` must be at least 1, got {clusters}")
    if assignments < 1:
        raise InputError(f"`assignments` must be at least 1, got {assignments}")
    if keep not in KEEP_MEANING:
        raise InputError(f"`keep` must be one of {', '.join(KEEP_MEANING)}, got {keep!r}")


def _check_vectors(vectors: tuple, rows: int, earlier: Earlier) -> None:
    """Vectors that line up with the source's rows and compare with the earlier nights' ones."""
    if vectors[1] != rows:
        raise InputError(f"`embeddings` has {vectors[1]:,} rows but the source has {rows:,}")
    other = {s.model for s in earlier.sets if s.vectors is not None} - {_made_with(vectors[2])}
    if other:
        raise InputError(f"`previous` holds vectors of another model or prompt ({', '.join(sorted(other))}); "
                         "dedup with the same model and prompt each night")


def _made_with(embedding: Embedding) -> str:
    """What a kept set's vectors compare by: the model's fingerprint, and the prompt's text where there is one."""
    return embedding.spec.fingerprint + (f" with prompt {embedding.prompt_text!r}" if embedding.prompt_text else "")
