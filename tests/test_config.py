import pytest

from kbatch.engine.config import ClusterConfig, load_cluster_config
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
