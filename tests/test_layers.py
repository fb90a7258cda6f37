"""The layers of docs/ARCHITECTURE.md hold: nothing imports upwards, and nothing below
``commands/`` knows a CLI flag (library errors name parameters; the CLI maps them)."""

import ast
import re
from pathlib import Path

KBATCH = Path(__file__).resolve().parents[1] / "kbatch"
# Lower imports nothing higher. Same rank: independent of each other or one package.
RANK = {"caches": 0, "errors": 0, "html": 0, "io": 1, "models": 2, "use_m3": 2, "e5": 2, "analyzers": 2, "vectors": 2, "stages": 3,
        "engine": 4, "topicmodel": 5, "duplicates": 5, "commands": 6, "jobs": 7, "cli": 8}
BELOW_COMMANDS = [name for name, rank in RANK.items() if rank < RANK["commands"]]
# Command lines kbatch runs itself, not flags it tells a user about.
SUBPROCESS_ARGUMENTS = {"engine/cluster.py", "analyzers/mecab.py"}
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def layer(path: Path) -> str:
    return path.relative_to(KBATCH).parts[0].removesuffix(".py")


def kbatch_imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kbatch."):
            yield node.lineno, node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("kbatch."))


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in KBATCH.rglob("*.py"):
        if layer(path) not in RANK:
            continue  # kbatch/__init__.py and __main__.py sit on top
        for line, other in kbatch_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if other in RANK and RANK[other] > RANK[layer(path)]:
                upward.append(f"{path.relative_to(KBATCH)}:{line} imports kbatch.{other}")
    assert upward == []


def non_docstring_strings(tree: ast.AST):
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_below_commands_errors_name_parameters_not_flags():
    flags = []
    for name in BELOW_COMMANDS:
        for path in (KBATCH / name).rglob("*.py") if (KBATCH / name).is_dir() else [KBATCH / f"{name}.py"]:
            if str(path.relative_to(KBATCH)) in SUBPROCESS_ARGUMENTS:
                continue
            for line, text in non_docstring_strings(ast.parse(path.read_text(encoding="utf-8"))):
                if FLAG.search(text):
                    flags.append(f"{path.relative_to(KBATCH)}:{line} {text!r}")
    assert flags == []


def test_the_cli_shows_a_parameter_as_its_flag():
    from kbatch.cli import as_flags

    assert as_flags("no text column 'title' (choose one with `text_col`)") == "no text column 'title' (choose one with --text-col)"
