import pytest

from kbatch.config import ClusterConfig, load_cluster_config
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
