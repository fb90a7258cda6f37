"""The stage contract: declared columns and resource, one partition at a time.

A stage object is small configuration that pickles cheaply; heavy per-worker resources
(tokenizers, models) are loaded lazily by cached loaders in the worker process, never in
the client and never sent over the wire. The same object runs in a unit test on a plain
DataFrame and inside a Dask task.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from kbatch.errors import InputError


class Stage:
    """Base class: subclasses set ``needs``, ``adds``, ``resource`` and ``process``."""

    needs: tuple[str, ...] = ()
    adds: tuple[str, ...] = ()
    resource: ClassVar[str] = "CPU"

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.needs if c not in frame.columns]
        if missing:
            raise InputError(
                f"{type(self).__name__} needs column(s) {', '.join(missing)}; the partition has {', '.join(map(str, frame.columns))}"
            )
        return self.process(frame)

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError
