"""What ``topics`` writes besides ``doc_topics``: ``topics.parquet`` and the run manifest."""

from __future__ import annotations

import json
import time

import pandas as pd
import pyarrow as pa

from kbatch.engine.manifest import RunResult, versions
from kbatch.io import storage


def write_topics(out: str, table: pd.DataFrame, key: str, last_id: int) -> None:
    """``topics.parquet``, recording the largest topic id this run or any before it used, so that a
    later run never gives a new topic the id of one that is gone."""
    dimension = len(next(c for c in table["centroid"] if c is not None)) if (table.topic >= 0).any() else 0
    schema = pa.schema([("topic", pa.int32()), ("size", pa.int64()), ("keywords", pa.list_(pa.string())),
                        ("keyword_scores", pa.list_(pa.float32())), ("representative_ids", pa.list_(pa.string())),
                        ("centroid", pa.list_(pa.float32(), dimension))],
                       metadata={b"kbatch": json.dumps({"params": key, "last_topic_id": last_id}).encode()})
    storage.write_parquet(pa.Table.from_pandas(table, schema=schema, preserve_index=False), storage.join(out, "topics.parquet"))


def topics_manifest(params: dict, key: str, tokens: RunResult, vectors_dir: str, blocks: int, table: pd.DataFrame, metrics: dict, how: str,
              counts: dict, seconds: dict, started: float, rows: int, plot) -> dict:
    total = time.perf_counter() - started
    no_topic = rows - int(table["size"].sum())
    topic_steps = sum(v for k, v in seconds.items() if k not in ("embed", "tokenize"))
    return {
        "command": "topics",
        "status": "complete",
        "params_key": key,
        "params": params,
        "input": tokens.manifest["input"],
        "embeddings": vectors_dir,
        "tokens": {"directory": tokens.output, "analyzer": tokens.manifest["analyzer"]},
        "n_topics_chosen": how,
        "partitions_total": blocks,
        "partitions_done": blocks,
        "partitions_reused": 0,
        "rows_in": rows,
        "rows_out": rows,
        "rows_done": rows - no_topic,
        "rows_skipped": {"no_text": no_topic} if no_topic else {},
        "counts": counts,
        "outlier_share": round(counts["outliers"] / (rows - no_topic), 4) if rows > no_topic else 0.0,
        "metrics": metrics,
        "outputs": {"doc_topics": "doc_topics", "topics": "topics.parquet", "plot": str(plot) if plot else None},
        "output_schema": {"doc_topics": {"id": "id", "topic": "int32 (-1 = outlier, null = no text)", "score": "float32"},
                          "topics": {"topic": "int32", "size": "int64", "keywords": "list<string>",
                                     "keyword_scores": "list<float32>", "representative_ids": "list<string>",
                                     "centroid": "fixed_size_list<float32>[dim]"}},
        "seconds": {"total": round(total, 3), **{k: round(v, 3) for k, v in seconds.items()}},
        "throughput_rows_per_s": {"total": round(rows / total, 2),
                                  "processing": round(rows / topic_steps, 2) if topic_steps else 0.0},
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
