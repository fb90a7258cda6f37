"""The stage contract: what a stage reads, what it writes (with Arrow types), where it runs.

A stage is small configuration that pickles cheaply. It declares:

- ``needs``: the columns it reads, checked against the source and earlier stages' outputs
  before anything is submitted (:func:`check_stages`);
- ``outputs``: the columns it adds or replaces, with their Arrow types, from which the
  output file's schema and the manifest's ``output_schema`` are derived;
- ``drops``: the columns it removes (token ids once they are vectors);
- ``resource``: ``CPU`` or ``GPU``; the runner groups consecutive stages by it into tasks
  and routes each task by it (:mod:`kbatch.engine.run`);
- ``setup``/``teardown``: its per-worker resources (a model, an analyzer), loaded once per
  worker into :mod:`kbatch.caches`, never in the client, never sent over the wire.

The same object runs in a unit test on a plain DataFrame and inside a Dask task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.errors import InputError

CPU = "CPU"
GPU = "GPU"


@dataclass(frozen=True)
class Vectors:
    """The Arrow type of an embedding column, whose length is the model's (known on a worker)."""

    dtype: str = "float32"

    def __str__(self) -> str:
        return f"fixed_size_list<{self.dtype}>[dim]"

    def accepts(self, type_: pa.DataType) -> bool:
        return pa.types.is_fixed_size_list(type_) and type_.value_type == pa.from_numpy_dtype(np.dtype(self.dtype))


class SameAsInput:
    """The Arrow type of a column copied from the input (ids), whatever the input's is."""

    def __str__(self) -> str:
        return "id"


ID = SameAsInput()
ColumnType = pa.DataType | Vectors | SameAsInput


class Stage:
    """Base class: subclasses set ``needs``, ``outputs``, ``resource`` and ``process``."""

    needs: tuple[str, ...] = ()
    outputs: Mapping[str, ColumnType] = {}
    drops: tuple[str, ...] = ()
    resource: ClassVar[str] = CPU
    # False for stages whose output rows are not their input rows (top-k: left rows → matches).
    keeps_rows: ClassVar[bool] = True

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.needs if c not in frame.columns]
        if missing:
            raise InputError(
                f"{type(self).__name__} needs column(s) {', '.join(missing)}; the partition has {', '.join(map(str, frame.columns))}"
            )
        self.setup()
        return self.process(frame)

    def setup(self) -> None:
        """Load this stage's per-worker resources (cached: cheap when already loaded)."""

    def teardown(self) -> None:
        """Release this stage's per-worker resources."""

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        """Counts for the partition's record, read from this stage's output."""
        return {}

    def errors(self, frame: pd.DataFrame) -> list[dict]:
        """Row-level errors (examples) for the partition's record, read from this stage's output."""
        return []

    def describe(self) -> dict:
        """What this stage adds to every part's metadata (a model's dimension and pooling)."""
        return {}

    def loads(self) -> str | None:
        """What ``setup`` loads that takes a while (a model's name), said on the progress bar
        while the workers load it, before the first partition is done."""
        return None

    def expand(self) -> list[Stage]:
        """The stages this one stands for: itself, or a composite's parts."""
        return [self]


def expand(stages: Iterable[Stage]) -> list[Stage]:
    """``stages`` with composites replaced by their parts."""
    return [part for stage in stages for part in stage.expand()]


def check_stages(stages: Sequence[Stage], columns: Iterable[str]) -> list[str]:
    """The columns after ``stages`` run on a frame of ``columns``; raise before any work when
    a stage needs a column that neither the source nor an earlier stage provides."""
    have = list(columns)
    for stage in stages:
        missing = [c for c in stage.needs if c not in have]
        if missing:
            raise InputError(f"{type(stage).__name__} needs column(s) {', '.join(missing)}, which "
                             f"neither the input nor an earlier stage provides (they provide {', '.join(have)})")
        have = [c for c in have if c not in stage.drops]
        have += [c for c in stage.outputs if c not in have]
    return have
