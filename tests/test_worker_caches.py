"""Per-worker caches: loaded once per worker, released when the plugin that owns them goes."""

from kbatch import caches
from kbatch.caches import WorkerCaches
from kbatch.models.resolve import resolve_model
from kbatch.stages import SubwordTokenize


def load_tokenizer_here(stage: SubwordTokenize) -> int:
    stage.setup()
    return caches.held()


def test_removing_the_plugin_releases_what_its_workers_loaded(cluster):
    client = cluster.client
    client.register_plugin(WorkerCaches())
    stage = SubwordTokenize.for_model(resolve_model())
    assert all(n >= 1 for n in client.gather(client.map(load_tokenizer_here, [stage] * 4, pure=False)))
    assert max(client.run(caches.held).values()) >= 1
    client.unregister_worker_plugin(WorkerCaches.name)
    assert set(client.run(caches.held).values()) == {0}
