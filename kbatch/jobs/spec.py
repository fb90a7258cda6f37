"""Job files (``jobs/*.yaml``): a named sequence of kbatch commands, validated before anything runs.

An unknown key, an option a command does not take, a step that names an input nobody
defined, or (for a given date) an input file that is not there is an error that names it:
a typo in a job file must fail at 02:00 with a clear line, not do something else.

Names become folder names and words of a crontab line or systemd unit, so job, input and
step names are identifiers, never paths; path templates fill in ``{date}`` and nothing
else, and the date is a real ``YYYY-MM-DD`` date.

::

    name: nightly_product_matching
    schedule: {cron: "0 2 * * *", timezone: Asia/Seoul}
    cluster: cluster.yaml              # optional; default: a local cluster (never the cwd cron starts in)
    cache: out/cache                   # optional embedding cache shared by every night
    storage_options: {s3: {endpoint_url: "http://minio:9000"}}   # optional, over the cluster file's
    inputs:
      offers: data/offers/{date}.parquet
      catalog: data/catalog.parquet
    steps:
      - {name: matches, command: match, left: offers, right: catalog, options: {text_col: title, top_k: 5}}
    output: out/nightly/{date}         # each step writes OUTPUT/<step name>

Every path (the job file too) may be a URL (``s3://bucket/nights/{date}``).
"""

from __future__ import annotations

import inspect
import os
import re
import string
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path

import yaml

from kbatch.engine.config import check_storage_options
from kbatch.engine.frame import RunOptions
from kbatch.errors import InputError
from kbatch.io import storage
from kbatch.jobs.schedule import Schedule

JOB_KEYS = ("name", "schedule", "cluster", "cache", "storage_options", "inputs", "steps", "output")
STEP_KEYS = ("name", "command", "input", "left", "right", "embeddings", "options")
# Which references each command takes: the first is required.
COMMAND_SOURCES = {
    "embed": ("input",),
    "tokenize": ("input",),
    "keywords": ("input",),
    "topics": ("input", "embeddings"),
    "match": ("left", "right"),
    "dedup": ("input", "embeddings"),
}
# Options a job may not set: the job decides where outputs go, which night they build on and how the run is shown.
RESERVED_OPTIONS = frozenset({"client", "cluster", "progress", "log", "output", "cache", "report", "previous"})
# No '.', '/' or whitespace: a name is a folder of the night, a crontab word and part of a
# systemd unit name, and must stay one word in each.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NAME_RULE = "letters, digits, '_' and '-', starting with a letter or digit, at most 64"


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    sources: dict[str, str]  # reference kind (input, left, ...) -> input or earlier step name
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    name: str
    file: str
    inputs: dict[str, str]
    steps: tuple[Step, ...]
    output: str
    schedule: Schedule | None = None
    cluster: str | None = None
    cache: str | None = None
    storage_options: dict = field(default_factory=dict)

    def output_for(self, date: str) -> str:
        """The location of ``date``'s night."""
        return storage.location(self.output.format(date=check_date(date)))

    def inputs_for(self, date: str) -> dict[str, str]:
        """Input paths of ``date``; a missing one is an error naming it."""
        paths = {name: path.format(date=check_date(date)) for name, path in self.inputs.items()}
        for name, path in paths.items():
            if not storage.exists(path):
                raise InputError(f"job {self.name}: input {name!r} ({path}) does not exist")
        return paths


def load_job(path: str | os.PathLike[str]) -> Job:
    """Read and validate a job file."""
    where = f"job file {path}"
    try:
        raw = yaml.safe_load(storage.read_bytes(os.fspath(path)).decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{where} does not exist") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{where} is not valid YAML: {exc}".replace("\n", " ")) from None
    raw = _mapping(raw, where, JOB_KEYS, required=("name", "inputs", "steps", "output"))
    name = _name(raw["name"], where)
    inputs = {_name(k, f"{where}: inputs", "input name"): _template(v, f"{where}: input {k!r}")
              for k, v in _mapping(raw["inputs"], f"{where}: inputs").items()}
    if not isinstance(raw["steps"], list) or not raw["steps"]:
        raise InputError(f"{where}: 'steps' must be a non-empty list")
    steps: list[Step] = []
    for number, entry in enumerate(raw["steps"], 1):
        steps.append(_step(entry, f"{where}: step {number}", set(inputs) | {s.name for s in steps}))
    schedule = None
    if raw.get("schedule") is not None:
        timing = _mapping(raw["schedule"], f"{where}: schedule", ("cron", "timezone"), required=("cron",))
        schedule = Schedule.parse(str(timing["cron"]), str(timing.get("timezone", "UTC")))
    options = raw.get("storage_options") or {}
    check_storage_options(options, f"{where}: storage_options", InputError)
    return Job(name, str(path), inputs, tuple(steps), _output(raw["output"], f"{where}: 'output'"),
               schedule, _optional_str(raw.get("cluster")), _cache(raw.get("cache"), f"{where}: 'cache'"), dict(options))


def check_date(date: str) -> str:
    """``date`` if it is a real ``YYYY-MM-DD`` date: it becomes part of every path of the night."""
    try:
        if datetime.strptime(date, "%Y-%m-%d").strftime("%Y-%m-%d") == date:
            return date
    except (TypeError, ValueError):
        pass
    raise InputError(f"the date of a night must be a real date written YYYY-MM-DD (`date` 2026-11-26), got {date!r}")


def _name(value, where: str, key: str = "name") -> str:
    """An identifier: a name becomes a folder of the night and a word of a crontab line."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InputError(f"{where}: {key} {value!r} is not an identifier ({NAME_RULE})")
    return value


def _template(value, where: str) -> str:
    """A path in which only ``{date}`` is filled in: ``str.format`` would also read
    attributes and items (``{date.__class__}``) or fail on any other name."""
    if not isinstance(value, str) or not value or not value.isprintable():
        raise InputError(f"{where} must be a path of printable characters, got {value!r}")
    other = [p for p in _placeholders(value, where) if p != "{date}"]
    if other:
        raise InputError(f"{where}: {value!r} may use only the placeholder {{date}}, not {other[0]}")
    return value


def _placeholders(template: str, where: str) -> list[str]:
    """Every ``{...}`` field of ``template`` as written, e.g. ``{date}`` or ``{date.year}``."""
    try:
        parts = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise InputError(f"{where}: {template!r} is not a path template ({exc}); write a literal brace twice") from None
    return ["{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}" for name, spec, conversion in parts]


def _output(value, where: str) -> str:
    """The nights' folder template: without ``{date}`` every night would be the first one,
    and a last part ``..`` is no folder a night can be renamed to."""
    template = _template(value, where)
    if "{date}" not in _placeholders(template, where):
        raise InputError(f"{where}: {template!r} must contain {{date}}, so that each night has its own folder")
    if Path(template.format(date="2000-01-01")).name in ("", ".."):
        raise InputError(f"{where}: {template!r} must end in a folder name")
    return template


def _cache(value, where: str) -> str | None:
    """The cache is shared by every night and is never formatted: a placeholder would be a folder name."""
    if value is None:
        return None
    template = _template(value, where)
    if _placeholders(template, where):
        raise InputError(f"{where}: {template!r} is shared by every night and takes no {{date}}")
    return template


def _step(entry, where: str, known: set[str]) -> Step:
    entry = _mapping(entry, where, STEP_KEYS, required=("name", "command"))
    name, command = _name(entry["name"], where), str(entry["command"])
    if name in known:
        raise InputError(f"{where}: name {name!r} is already an input or an earlier step")
    if command not in COMMAND_SOURCES:
        raise InputError(f"{where}: unknown command {command!r} (one of {', '.join(COMMAND_SOURCES)})")
    allowed = COMMAND_SOURCES[command]
    wrong = [k for k in ("input", "left", "right", "embeddings") if k in entry and k not in allowed]
    if wrong:
        raise InputError(f"{where} ({name}): {command} takes {', '.join(allowed)}, not {wrong[0]!r}")
    if allowed[0] not in entry:
        raise InputError(f"{where} ({name}): {command} needs {allowed[0]!r}")
    sources = {k: str(entry[k]) for k in allowed if k in entry}
    for kind, reference in sources.items():
        if reference not in known:
            raise InputError(f"{where} ({name}): {kind} {reference!r} is neither an input nor an earlier step")
    options = _mapping(entry.get("options") or {}, f"{where} ({name}): options")
    _check_options(command, options, f"{where} ({name})")
    return Step(name, command, sources, options)


def command_function(command: str):
    """The library function behind a job command."""
    if command == "embed":
        from kbatch.commands.embed import embed as function
    elif command == "tokenize":
        from kbatch.commands.tokenize import tokenize as function
    elif command == "keywords":
        from kbatch.commands.keywords import keywords as function
    elif command == "topics":
        from kbatch.commands.topics import topics as function
    elif command == "dedup":
        from kbatch.commands.dedup import dedup as function
    else:
        from kbatch.commands.match import match as function
    return function


def _check_options(command: str, options: dict, where: str) -> None:
    parameters = inspect.signature(command_function(command)).parameters
    accepted = {n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and n != "source")}
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        accepted |= {f.name for f in fields(RunOptions)}
    accepted -= RESERVED_OPTIONS | {"left", "right", "embeddings", "source"}
    for key in options:
        if key not in accepted:
            raise InputError(f"{where}: {command} has no option {key!r} (options: {', '.join(sorted(accepted))})")


def _mapping(value, where: str, keys: tuple[str, ...] | None = None, required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a mapping of keys to values")
    if keys is not None:
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(keys)})")
    missing = [k for k in required if k not in value]
    if missing:
        raise InputError(f"{where}: missing key {missing[0]!r}")
    return value


def _optional_str(value) -> str | None:
    return None if value is None else str(value)
