"""Training pairs read from TSV/CSV the way KorSTS and KorNLI are written, bad rows named.

KorSTS quotes nothing (a sentence may hold a lone ``"``), so TSV is read with
``QUOTE_NONE``; scores are written unevenly (``5.000``, ``3.20``, ``0``) and cast. A row
with the wrong number of fields, an empty sentence or a score that is not a number in
0–5 is reported with its line number and left out, never silently dropped.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kbatch.errors import InputError
from kbatch.io.text_formats import read_utf8

# Columns each task reads, in order; the first ones are required.
TASK_COLUMNS = {"sts": ("sentence1", "sentence2", "score"), "nli": ("anchor", "positive", "negative")}
REQUIRED = {"sts": 3, "nli": 2}
MAX_SCORE = 5.0
# Bad rows quoted in the warning and the model card; all are counted.
SHOWN_BAD_ROWS = 10


@dataclass
class Pairs:
    """The usable rows of a training or dev file, and what was wrong with the others."""

    path: str
    frame: pd.DataFrame
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    def describe(self) -> dict:
        return {"path": self.path, "rows": len(self.frame), "bad_rows": len(self.bad_rows),
                "bad_examples": [f"line {n}: {why}" for n, why in self.bad_rows[:SHOWN_BAD_ROWS]]}


def read_pairs(path: str | os.PathLike[str], task: str, log=sys.stderr) -> Pairs:
    """The ``task``'s columns of a TSV/CSV file with a header row (KorNLI's ``sentence1,
    sentence2, gold_label`` becomes anchor/positive pairs of its entailments)."""
    path = Path(path)
    if path.suffix.lower() not in (".tsv", ".csv"):
        raise InputError(f"{path}: training data must be .tsv or .csv with a header row")
    text = read_utf8(path, str(path))
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if path.suffix.lower() == ".tsv" else {"delimiter": ","}
    rows = list(csv.reader(text.splitlines(), **dialect))
    if not rows:
        raise InputError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    if task == "nli" and {"sentence1", "sentence2", "gold_label"} <= set(header):
        return _entailments(path, header, body, log)
    wanted = TASK_COLUMNS[task]
    missing = [c for c in wanted[: REQUIRED[task]] if c not in header]
    if missing:
        raise InputError(f"{path}: no column {missing[0]!r} for `task` {task} (columns: {', '.join(header)})")
    columns = [c for c in wanted if c in header]
    index = [header.index(c) for c in columns]
    kept, bad = [], []
    for number, row in enumerate(body, start=2):
        why = _problem(row, len(header), [row[i] if i < len(row) else "" for i in index], columns, task)
        if why:
            bad.append((number, why))
        else:
            kept.append([row[i] for i in index])
    frame = pd.DataFrame(kept, columns=columns)
    if task == "sts":
        frame["score"] = frame["score"].astype(float)
    return _checked(Pairs(str(path), frame, bad), log)


def _problem(row: list[str], width: int, values: list[str], columns: list[str], task: str) -> str | None:
    if len(row) != width:
        return f"{len(row)} fields, the header has {width}"
    for column, value in zip(columns, values, strict=True):
        if column == "score":
            try:
                score = float(value)
            except ValueError:
                return f"score {value!r} is not a number"
            if not 0 <= score <= MAX_SCORE:
                return f"score {score} is outside 0-{MAX_SCORE:g}"
        elif not value.strip() and (column != "negative"):
            return f"{column} is empty"
    return None


def _entailments(path: Path, header: list[str], body: list[list[str]], log) -> Pairs:
    """KorNLI rows: each premise with an entailed hypothesis as anchor/positive, and one of
    its contradictions (when it has one) as the hard negative, as SBERT trains on NLI."""
    first, second, label = (header.index(c) for c in ("sentence1", "sentence2", "gold_label"))
    entailed, contradicted, bad = {}, {}, []
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            bad.append((number, f"{len(row)} fields, the header has {len(header)}"))
            continue
        target = {"entailment": entailed, "contradiction": contradicted}.get(row[label].strip())
        if target is not None:
            target.setdefault(row[first], []).append(row[second])
    rows = [(p, h, (contradicted.get(p) or [""])[0]) for p, hs in entailed.items() for h in hs]
    return _checked(Pairs(str(path), pd.DataFrame(rows, columns=["anchor", "positive", "negative"]), bad), log)


def _checked(pairs: Pairs, log) -> Pairs:
    if pairs.bad_rows:
        shown = "; ".join(f"line {n}: {why}" for n, why in pairs.bad_rows[:SHOWN_BAD_ROWS])
        print(f"kbatch: warning: {pairs.path}: {len(pairs.bad_rows):,} bad row(s) left out ({shown})", file=log)
    if pairs.frame.empty:
        raise InputError(f"{pairs.path}: no usable rows")
    if "negative" in pairs.frame and (pairs.frame["negative"].str.strip() == "").any():
        pairs.frame = pairs.frame.drop(columns="negative")  # the loss takes a negative for every pair or for none
    return pairs
