"""A real S3 endpoint for tests: moto's server on 127.0.0.1 in a process of its own, as
s3fs's own test suite runs it. Nothing is mocked: clients speak HTTP to it.

Clients find it the usual way, through the environment (:func:`s3_environment`), so any
process started afterwards (a spawned Dask worker) finds it too:

- ``AWS_ENDPOINT_URL``: botocore reads it each time a client is made. That covers s3fs
  (through aiobotocore), boto3, and pyarrow's own S3 filesystem (what ``pandas.read_parquet``
  uses for an ``s3://`` URL given no ``storage_options``).
- ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``.

``FSSPEC_S3_ENDPOINT_URL`` also reaches s3fs, but fsspec reads ``FSSPEC_*`` variables
once, when ``fsspec`` is imported: setting it in a process that has already imported
fsspec (the test process) changes nothing there, so it is not used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import s3fs

# Set by s3_environment. The credentials are moto's conventional fake ones.
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# Removed, so a developer's own AWS set-up cannot point a test elsewhere.
CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
           "AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def moto_server(timeout: float = 30) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free port of 127.0.0.1 and yield its URL once it
    answers; stop it on exit. A port taken between choosing and binding it is retried."""
    for _ in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while process.poll() is None and not _answers(url):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not answer on {url} within {timeout:.0f} s")
                time.sleep(0.1)
            if process.poll() is None:
                yield url
                return
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    raise RuntimeError(f"moto's S3 server exited at start (exit status {process.returncode}); is moto[server] installed?")


def s3_environment(endpoint: str) -> dict[str, str]:
    """The variables that send every S3 client of this process and of its children to
    ``endpoint``. ``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` point at an empty file so
    ``~/.aws`` cannot add an endpoint or a profile."""
    return {**CREDENTIALS, ENDPOINT_VARIABLE: endpoint, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def bucket_name() -> str:
    """A fresh, valid bucket name (lower case, 3 to 63 characters)."""
    return f"kbatch-test-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket on the test endpoint.

    ``url`` is ``s3://name``; ``fs`` is an ``s3fs.S3FileSystem`` made from the environment
    alone, for setting up and checking objects."""

    url: str
    fs: s3fs.S3FileSystem
    endpoint: str

    @property
    def name(self) -> str:
        return self.url.removeprefix("s3://")

    def path(self, key: str) -> str:
        """``s3://bucket/key``."""
        return f"{self.url}/{key}"
