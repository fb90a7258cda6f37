"""The run manifest ``_kbatch.json`` and the one-line summary printed at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import metadata


def versions() -> dict[str, str]:
    found = {}
    for name in ("kbatch", "dask", "distributed", "torch", "sentence-transformers", "pyarrow", "onnxruntime"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def totals(partitions: list[dict]) -> dict:
    """Row counts, skip reasons, command counts and stage seconds summed over partition records."""
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for part in partitions:
        skipped.update(part["skipped"])
        counts.update(part["counts"])
        seconds.update(part["seconds"])
    rows = sum(p["rows"] for p in partitions)
    return {
        "rows_in": rows,
        "rows_out": rows,
        "rows_done": rows - sum(skipped.values()),
        "rows_skipped": dict(sorted(skipped.items())),
        "counts": dict(counts),
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


# Topic quality in the summary line: manifest key -> printed name.
TOPIC_METRICS = {"npmi": "NPMI", "topic_diversity": "diversity", "nmi": "NMI", "ari": "ARI"}


@dataclass(frozen=True)
class RunResult:
    """What a command did: the manifest it wrote, and where."""

    output: str
    manifest: dict

    def summary(self) -> str:
        m = self.manifest
        skipped = m["rows_skipped"]
        why = ", ".join(f"{n:,} {reason}" for reason, n in skipped.items())
        skipped_text = f"{sum(skipped.values()):,} skipped: {why}" if skipped else "0 skipped"
        counted = "".join(f"; {n:,} {name.replace('_', ' ')}" for name, n in m["counts"].items())
        metrics = m.get("metrics")
        if metrics and metrics.get("spearman") is not None:
            counted += f"; Pearson {metrics['pearson']:.2f}, Spearman {metrics['spearman']:.2f} (x100, {metrics['pairs']:,} pairs)"
        if metrics and "topic_diversity" in metrics:
            counted += "".join(f"; {name} {metrics[key]:.3f}" for key, name in TOPIC_METRICS.items() if metrics.get(key) is not None)
        reused = f", {m['partitions_reused']} partitions reused" if m["partitions_reused"] else ""
        if not m["partitions_done"]:
            done = f"all {m['partitions_reused']} partitions of {m['rows_in']:,} rows are complete"
            return f"{m['command']}: nothing to do, {done} -> {self.output}"
        return (
            f"{m['command']}: {m['rows_in']:,} rows ({skipped_text}{counted}{reused}) "
            f"in {m['seconds']['total']:.1f} s, {m['throughput_rows_per_s']['total']:,.1f} rows/s "
            f"({m['throughput_rows_per_s']['processing']:,.1f} rows/s after start-up) -> {self.output}"
        )
