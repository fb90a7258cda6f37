"""The kbatch page and Prometheus gauges on a live cluster's dashboard, fetched over HTTP as a browser or Prometheus would."""

import json
import urllib.request

import pytest
from distributed import Client, LocalCluster

from kbatch.engine.monitor import install, report


@pytest.fixture
def client():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def steps(page: str) -> dict[str, dict]:
    return {step["step"]: step for step in json.loads(fetch(page + ".json"))["steps"]}


def test_page_shows_each_step_with_counts_throughput_and_eta(client):
    page = install(client)
    assert page is not None and page.endswith("/kbatch")

    report(client, "embed catalog", 0, 1000)
    report(client, "embed catalog", 400, 1000)
    report(client, "score pairs", 50, 50, finished=True)

    embed, score = steps(page)["embed catalog"], steps(page)["score pairs"]
    assert (embed["rows_done"], embed["rows_total"], embed["finished"]) == (400, 1000, False)
    assert embed["throughput_rows_per_second"] > 0 and embed["eta_seconds"] > 0
    assert (score["rows_done"], score["finished"], score["eta_seconds"]) == (50, True, 0.0)

    html = fetch(page)
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "embed catalog" in html and "400 / 1,000" in html and 'style="width: 40.0%"' in html
    assert "score pairs" in html and "done" in html


def test_prometheus_endpoint_has_kbatch_gauges_per_step(client):
    pytest.importorskip("prometheus_client")
    install(client)
    report(client, "embed catalog", 10, 1000)
    page = install(client)  # a second run on the same cluster: its own steps, one set of gauges
    report(client, "embed catalog", 400, 1000)
    report(client, "score pairs", 50, 50, finished=True)

    metrics = fetch(page.removesuffix("/kbatch") + "/metrics").splitlines()
    assert 'kbatch_rows_done{step="embed catalog"} 400.0' in metrics
    assert 'kbatch_rows_total{step="embed catalog"} 1000.0' in metrics
    assert 'kbatch_rows_done{step="score pairs"} 50.0' in metrics
    assert 'kbatch_eta_seconds{step="score pairs"} 0.0' in metrics
    assert any(line.startswith('kbatch_throughput_rows_per_second{step="embed catalog"}') for line in metrics)
    assert metrics.count("# TYPE kbatch_rows_done gauge") == 1


def test_report_before_install_does_nothing(client):
    report(client, "embed catalog", 10, 100)  # no plugin listens yet: no error

    page = install(client)
    assert steps(page) == {}


def test_installing_again_replaces_the_plugin(client):
    install(client)
    report(client, "embed catalog", 10, 100)

    page = install(client)
    report(client, "score pairs", 5, 50)

    assert list(steps(page)) == ["score pairs"]
    assert "score pairs" in fetch(page) and "embed catalog" not in fetch(page)
