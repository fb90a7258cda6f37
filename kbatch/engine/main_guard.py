"""Stop a script that starts kbatch from its top level, before any worker starts.

A local cluster's workers are spawned processes, and a spawned process imports the
``__main__`` script again (as ``__mp_main__``) to find what it runs. A script that calls
``kbatch.embed(...)`` at its top level, outside ``if __name__ == "__main__":``, makes every
worker call it again and start a cluster of its own, which fails with a hundred lines of
tracebacks from each worker. :func:`check_main_guard` finds the script's top-level line
that led to the cluster start and, when no guard covers it, says in one line what to add.

Only scripts are checked: ``python -c``, the interactive prompt and notebooks (no
``__file__``), ``python -m kbatch`` and pytest are left alone; so is anything the check
cannot read (a zip application, a script deleted since it started).
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType

from kbatch.errors import MainGuardError, failure_line

# Entry points whose own guard is known: kbatch's command line and pytest.
TRUSTED_ENTRY_POINTS = frozenset({"kbatch", "pytest", "py.test"})
GUARD = 'if __name__ == "__main__":'


def check_main_guard() -> None:
    """Raise :class:`MainGuardError` (after printing its one line) when the ``__main__``
    script reached here from top-level code that its spawned workers would run again."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or _trusted(main, path):
        return
    line = top_level_line(main, path, sys._getframe(1))
    if line is None:
        return
    try:
        guarded = is_guarded(Path(path).read_bytes(), line)
    except (OSError, SyntaxError, ValueError):  # unreadable: better to start than to refuse
        return
    if guarded:
        return
    error = MainGuardError(
        f"{Path(path).name} line {line} starts kbatch at the top level of the script, and kbatch's worker "
        f"processes import the script again: put the calls under {GUARD}"
    )
    print(f"kbatch: {failure_line(error)[0]}", file=sys.stderr, flush=True)
    raise error


def _trusted(main: ModuleType, path: str) -> bool:
    """Whether ``__main__`` is kbatch's or pytest's entry point (``python -m`` or a console script)."""
    spec = getattr(main, "__spec__", None)
    name = spec.name.split(".")[0] if spec is not None else Path(path).name
    return name in TRUSTED_ENTRY_POINTS


def top_level_line(main: ModuleType, path: str, frame: FrameType | None) -> int | None:
    """The line of the script's top-level code on the stack above ``frame``, or ``None``
    when the script's top level is not running in this thread (a thread it started, the
    prompt of ``python -i``). A call made inside a function counts where the top level
    called that function: that is the line a spawned worker would run again."""
    script = os.path.realpath(path)
    while frame is not None:
        code = frame.f_code
        if frame.f_globals is vars(main) and code.co_name == "<module>" and os.path.realpath(code.co_filename) == script:
            return frame.f_lineno
        frame = frame.f_back
    return None


def is_guarded(source: str | bytes, line: int) -> bool:
    """Whether ``line`` of a script runs only when the script is the main program: inside
    the body of ``if __name__ == "__main__":`` (or the ``else`` of ``!=``), or inside a
    function, which the top level only defines.

    >>> script = 'import kbatch\\nif __name__ == "__main__":\\n    kbatch.embed("a.parquet", "out")\\nkbatch.embed("a.parquet", "out")\\n'
    >>> is_guarded(script, 3), is_guarded(script, 4)
    (True, False)
    """
    return any(first <= line <= last for first, last in _guarded_ranges(ast.parse(source)))


def _guarded_ranges(tree: ast.Module) -> Iterator[tuple[int, int]]:
    """First and last line of each block that a worker importing the script does not run."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield _span(node.body)
        elif isinstance(node, ast.If):
            test = _main_test(node.test)
            block = node.body if test == "==" else node.orelse if test == "!=" else []
            if block:
                yield _span(block)


def _span(block: list[ast.stmt]) -> tuple[int, int]:
    return block[0].lineno, block[-1].end_lineno or block[-1].lineno


def _main_test(test: ast.expr) -> str | None:
    """``"=="`` for ``__name__ == "__main__"`` (also as one operand of ``and``), ``"!="`` for
    ``__name__ != "__main__"``, ``None`` for any other condition."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return "==" if any(_main_test(value) == "==" for value in test.values) else None
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    operands = {ast.unparse(test.left), ast.unparse(test.comparators[0])}
    if operands != {"__name__", "'__main__'"}:
        return None
    return {ast.Eq: "==", ast.NotEq: "!="}.get(type(test.ops[0]))
