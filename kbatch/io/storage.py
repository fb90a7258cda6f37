"""One file-system layer: local paths and URLs (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``,
``file://``) alike, through fsspec.

A location is a string: an absolute local path, or a URL. :func:`location` makes one in the
client, before anything is submitted, so a relative path means the client's directory even
on a worker that runs elsewhere. Credentials and endpoints come from where each store's
library looks (for S3: the environment, ``~/.aws``), in the client and in every worker, or
from ``storage_options:`` in a cluster or job file (:func:`configure`).

A store's client keeps the listings it has made (fsspec's listings cache), but the workers
write where the client listed: each function here that looks at what may have changed
(:func:`exists`, :func:`glob`, :func:`read_table`...) drops the listings of its path first
(:func:`fresh`), so it sees the objects written since.

Object stores have no rename: :func:`atomic_write` writes a local file beside its target and
renames it, but an object in one upload that is completed only when the write succeeded, so
a reader never sees half a file under its final name either way.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import fsspec

from kbatch.errors import InputError


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an object in a store rather than a local file."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def location(path: str | os.PathLike[str]) -> str:
    """``path`` as every process reads it: a URL as given (no trailing slash), a local path
    absolute and resolved (``file://`` stripped)."""
    text = os.fspath(path)
    if is_url(text):
        return text.rstrip("/")
    if text.startswith("file://"):
        text = text[len("file://"):]
    return str(Path(text).expanduser().resolve())


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as a user wrote it, tidied (``out/emb/`` → ``out/emb``), for messages and summaries."""
    return location(path) if is_url(path) else str(Path(path))


def read_schema(path: str):
    """A Parquet file's Arrow schema, with its metadata."""
    import pyarrow.parquet as pq

    fs, inner = filesystem(path)
    return pq.read_schema(inner, filesystem=fs)


def make_dirs(path: str) -> None:
    """The directory ``path`` and its parents (nothing to do for an object store's prefix)."""
    fs, inner = filesystem(path)
    fs.makedirs(inner, exist_ok=True)


def remove(path: str, recursive: bool = False) -> None:
    """Remove ``path`` if it is there."""
    if exists(path):
        fs, inner = fresh(path)
        fs.rm(inner, recursive=recursive)


def empty_directory(path: str) -> None:
    """``path`` as an empty directory: what it held removed (an object store's prefix: its objects)."""
    remove(path, recursive=True)
    make_dirs(path)


def read_table(path: str, columns: list[str] | None = None):
    """A Parquet file or directory of them, local or in a store, as one Arrow table."""
    import pyarrow.parquet as pq

    fs, inner = fresh(path)
    return pq.read_table(inner, filesystem=fs, columns=columns)


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system that holds ``path`` and the path within it."""
    try:
        return fsspec.core.url_to_fs(path)
    except ImportError as exc:
        scheme = path.split("://", 1)[0]
        raise InputError(f"{path}: reading {scheme}:// needs {exc.name or 'its fsspec package'}: "
                         f"pip install 'kbatch[{scheme}]' (or the fsspec package for {scheme})") from None


def configure(options: Mapping[str, Mapping[str, Any]]) -> None:
    """Make ``options`` (per protocol: ``{"s3": {"endpoint_url": ...}}``) the defaults of every
    file system this process opens from now on, as fsspec's own configuration does."""
    import fsspec.config

    for protocol, settings in options.items():
        fsspec.config.conf[protocol] = {**fsspec.config.conf.get(protocol, {}), **settings}


def matching(pattern: str) -> list[str]:
    """The locations a glob ``pattern`` (local or a URL) matches, sorted."""
    url = is_url(pattern)
    fs, inner = fresh(pattern if url else str(Path(pattern).expanduser().absolute()))
    protocol = pattern.split("://", 1)[0] + "://" if url else ""
    return sorted(protocol + found if url else found for found in fs.glob(inner))


def find_named(directory: str, name: str) -> list[str]:
    """Every file called ``name`` at any depth under ``directory``, as locations, sorted."""
    fs, inner = fresh(directory)
    if not fs.isdir(inner):
        return []
    base, root = location(directory), inner.rstrip("/")
    return sorted(join(base, *f[len(root):].strip("/").split("/")) for f in fs.find(inner) if name_of(f) == name)


def within(path: str, folder: str) -> bool:
    """Whether the location ``path`` is ``folder`` or lies under it (links resolved locally)."""
    inner, outer = location(path), location(folder)
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def fresh(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """:func:`filesystem`, with its cached listings of ``path`` and of the directories above
    dropped: another process (a worker) may have written there since they were made."""
    fs, inner = filesystem(path)
    fs.invalidate_cache(inner)
    return fs, inner


def join(base: str, *names: str) -> str:
    """``names`` under the location ``base``."""
    if is_url(base):
        return "/".join([base.rstrip("/"), *names])
    return os.path.join(base, *names)


def parent_of(path: str) -> str:
    """The folder that holds the location ``path``."""
    return path.rstrip("/").rsplit("/", 1)[0] if is_url(path) else os.path.dirname(path)


def name_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def suffix_of(path: str) -> str:
    name = name_of(path)
    return "." + name.rsplit(".", 1)[1].lower() if "." in name.lstrip(".") else ""


def version(path: str) -> tuple:
    """What changes when the file at ``path`` is rewritten: (inode, size, mtime, ctime) on a local
    disk, where an edit can keep size and mtime but never ctime; the ETag (a content hash
    or version the store assigns per write) and size on an object store."""
    if not is_url(path):
        stat = os.stat(path)
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    fs, inner = filesystem(path)
    info = fs.info(inner)
    return (store_version(info) or str(info.get("mtime") or ""), info.get("size"))


def size_and_version(path: str) -> tuple[int, str | None]:
    """A file's size and its :func:`store_version` (None on a local disk), in one request to a store."""
    if not is_url(path):
        return os.path.getsize(path), None
    fs, inner = filesystem(path)
    info = fs.info(inner)
    return int(info["size"]), store_version(info)


def store_version(info: dict) -> str | None:
    """What a store assigns an object at each write, from its ``info``: the ETag (S3, Azure) or
    MD5 (GCS), which changes whenever the content does; None where the store has none."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    return str(tag).strip('"') if tag else None


def exists(path: str) -> bool:
    fs, inner = fresh(path)
    return fs.exists(inner)


def is_file(path: str) -> bool:
    fs, inner = fresh(path)
    return fs.isfile(inner)


def is_dir(path: str) -> bool:
    fs, inner = fresh(path)
    return fs.isdir(inner)


def glob(directory: str, pattern: str) -> list[str]:
    """The files in ``directory`` whose names match ``pattern``, as locations, sorted."""
    fs, inner = fresh(directory)
    return sorted(join(directory, name_of(found)) for found in fs.glob(f"{inner.rstrip('/')}/{pattern}"))


def abort_uploads(directory: str) -> None:
    """Abort the unfinished uploads under ``directory`` (S3 multipart uploads a killed writer
    left: no object, but stored and billed). Left alone where listing them is not allowed."""
    fs, inner = filesystem(directory)
    if not hasattr(fs, "list_multipart_uploads"):
        return
    bucket, _, prefix = inner.strip("/").partition("/")
    try:
        for upload in fs.list_multipart_uploads(bucket):
            if upload["Key"].startswith(f"{prefix}/"):
                fs.abort_mpu(bucket, upload["Key"], upload["UploadId"])
    except PermissionError:
        pass


def write_parquet(table, path: str) -> None:
    """``table`` as the Parquet file ``path``, which appears whole or not at all."""
    import pyarrow.parquet as pq

    make_dirs(parent_of(path))
    with atomic_write(path) as handle:
        pq.write_table(table, handle)


def write_bytes(path: str, data: bytes) -> None:
    """``data`` as the file ``path``, all or nothing (:func:`atomic_write`), parents made locally."""
    if not is_url(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(data)


def read_bytes(path: str) -> bytes:
    fs, inner = fresh(path)
    with fs.open(inner, "rb") as handle:
        return handle.read()


@contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through, visible under that name only once the block
    ends without error: a renamed temporary file locally, one completed upload on a store."""
    if not is_url(path):
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
            yield handle
        return
    fs, inner = filesystem(path)
    handle: Any = fs.open(inner, "wb", autocommit=False)
    try:
        yield handle
        handle.close()  # with autocommit off, the data waits for commit(): the object does not exist yet
    except BaseException:
        handle.discard()
        raise
    handle.commit()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only once written and synced."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:  # pyarrow's write errors name no file
            raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
