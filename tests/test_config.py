import re
from dataclasses import asdict, fields
from importlib import resources
from pathlib import Path

import pytest
import yaml

from kbatch.engine.config import CLUSTER_KEYS, ClusterConfig, load_cluster_config
from kbatch.errors import ClusterError


def test_repo_cluster_file_gives_a_local_cluster(tmp_path):
    config = load_cluster_config("cluster.yaml")
    assert config.address is None
    assert config.local_workers() >= 1


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("n_worker: 2\n")
    with pytest.raises(ClusterError, match="unknown key 'n_worker'"):
        load_cluster_config(path)


def test_wrong_type_is_named(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("threads_per_worker: many\n")
    with pytest.raises(ClusterError, match="threads_per_worker"):
        load_cluster_config(path)


def test_torch_threads_share_the_cores():
    assert ClusterConfig(n_workers=2).torch_threads_per_worker(2, cores=8) == 4
    assert ClusterConfig(torch_threads=3).torch_threads_per_worker(2, cores=8) == 3


def test_the_dashboard_listens_on_this_machine_unless_opened():
    assert load_cluster_config("cluster.yaml").dashboard == ("127.0.0.1", 8787)
    assert ClusterConfig(dashboard_address=":0").dashboard == ("127.0.0.1", 0)  # Dask would read ':0' as every interface
    assert ClusterConfig(dashboard_address="0.0.0.0:8787").dashboard == ("0.0.0.0", 8787)


def test_memory_limits_read_as_dask_reads_them():
    assert ClusterConfig().memory_bytes is None
    assert ClusterConfig(memory_limit="4GiB").memory_bytes == 4 * 2**30
    assert ClusterConfig(memory_limit=2**31).memory_bytes == 2**31


def test_torch_threads_of_a_remote_cluster_are_not_bounded_by_these_cores():
    with pytest.raises(ClusterError, match="'torch_threads' must be a whole number from 1 to"):
        ClusterConfig(torch_threads=1000, n_workers=1)
    assert ClusterConfig(address="tcp://gpu-box:8786", torch_threads=1000).torch_threads == 1000


def test_torch_threads_auto_is_resolved_where_the_workers_are():
    auto = ClusterConfig()
    assert auto.torch_threads_per_worker(local_workers=2, cores=8) == 4  # kbatch's own workers share these cores
    assert auto.torch_threads_per_worker(local_workers=None) is None  # someone else's workers keep their own
    assert ClusterConfig(torch_threads=3).torch_threads_per_worker(local_workers=None) == 3


def test_every_cluster_key_is_defined_once_in_the_packaged_defaults():
    packaged = resources.files("kbatch.engine") / "cluster-defaults.yaml"
    defaults = yaml.safe_load(packaged.read_text(encoding="utf-8"))
    assert set(defaults) == {f.name for f in fields(ClusterConfig)} == set(CLUSTER_KEYS)
    assert asdict(ClusterConfig()) == defaults
    assert all(CLUSTER_KEYS.values()), "every key needs a one-line comment right above it"


def test_every_cluster_key_is_shown_to_users():
    example = Path("cluster.yaml").read_text(encoding="utf-8")
    readme = Path("README.md").read_text(encoding="utf-8")
    section = readme.split("## Where it runs: `cluster.yaml`", 1)[1].split("\n## ", 1)[0]
    for key in CLUSTER_KEYS:
        assert re.search(rf"^# {key}:", example, re.MULTILINE), f"cluster.yaml has no commented example of {key!r}"
        assert f"`{key}" in section, f"README's cluster.yaml section does not mention {key!r}"


def test_storage_options_are_a_mapping_of_protocols_to_options(tmp_path):
    (tmp_path / "cluster.yaml").write_text("storage_options: {s3: {endpoint_url: 'http://127.0.0.1:9000'}}\n")
    assert load_cluster_config(tmp_path / "cluster.yaml").storage_options == {"s3": {"endpoint_url": "http://127.0.0.1:9000"}}
    for wrong in ("storage_options: http://127.0.0.1:9000", "storage_options: {s3: http://127.0.0.1:9000}",
                  "storage_options: {'s3://': {anon: true}}"):
        (tmp_path / "cluster.yaml").write_text(wrong + "\n")
        with pytest.raises(ClusterError, match="storage_options"):
            load_cluster_config(tmp_path / "cluster.yaml")
    job = ClusterConfig(storage_options={"s3": {"endpoint_url": "a", "anon": False}})
    assert job.with_storage_options({"s3": {"endpoint_url": "b"}, "gcs": {"token": "anon"}}).storage_options == {
        "s3": {"endpoint_url": "b", "anon": False}, "gcs": {"token": "anon"}}
