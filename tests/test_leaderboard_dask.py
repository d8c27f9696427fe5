"""The dask backend past one process: workers read the dataset from a shared path, and a worker
killed mid-cell loses nothing (the cell is rerun on another worker, the others are kept)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from topiceval.adapters import registry  # noqa: E402
from topiceval.leaderboard import config as lconfig  # noqa: E402
from topiceval.leaderboard import runner  # noqa: E402


@pytest.fixture(scope="module")
def shared_h5ad(tmp_path_factory) -> Path:
    from topiceval import datasets

    adata = datasets.synthetic(n_cells=120, n_cell_types=4, n_topics=4, n_background_genes=100, seed=0)
    adata.obs = adata.obs[["cell_type"]]
    del adata.obsm["true_cell_topic"]
    del adata.varm["true_topic_gene"]
    adata.uns = {}
    path = tmp_path_factory.mktemp("shared") / "tiny.h5ad"
    adata.write_h5ad(path)
    return path


def config_for(path: Path, model: str) -> lconfig.LeaderboardConfig:
    return lconfig.load_config({
        "name": "dask", "seeds": [0, 1, 2],
        "datasets": [{"name": "tiny", "path": str(path), "label_key": "cell_type", "species": "human",
                      "values": "counts"}],
        "preprocess": {"n_top_genes": 300},
        "train": {"models": [model], "n_topics": 4},
        "models": {model: {"epochs": 30}},
        "collections": [{"name": "hallmark", "human": "hallmark", "metrics": ["td", "ip", "clustering"]}],
        "evaluation": {"cluster_resolutions": [0.5, 1.0]},
    })


def test_killed_worker_reruns_its_cell_and_keeps_the_others(shared_h5ad, tmp_path, monkeypatch):
    entry = registry.ModelEntry(name="killing", target="leaderboard_models:killing_nmf", extra=None,
                                requires=("sklearn",), description="NMF that kills its worker once (tests)")
    monkeypatch.setitem(registry._REGISTRY, "killing", entry)
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    monkeypatch.setenv("TOPICEVAL_TEST_ATTEMPTS", str(attempts))  # the workers inherit it
    cache = tmp_path / "cache"  # the shared path: the workers read the dataset from here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = runner.run(config_for(shared_h5ad, "killing"), cache=cache, backend="dask", n_jobs=2,
                             progress=False)
    cells = results.cells.set_index("seed")
    assert list(cells.loc[[0, 1, 2], "status"]) == ["done"] * 3
    seeds = sorted(int(s) for s in (attempts / "attempts.txt").read_text().split())
    assert seeds == [0, 1, 1, 2]  # seed 1 ran twice (killed, then rerun); the others once
    assert (attempts / "killed-1").exists()
    runs = sorted(p.name for p in (cache / "runs").iterdir())
    assert len(runs) == 3 and not list((cache / "runs").glob("*.tmp*"))  # nothing half-written kept
    # the rerun cell's scores are those of an undisturbed run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = runner.run(config_for(shared_h5ad, "killing"), cache=tmp_path / "fresh", backend="sequential",
                           progress=False)
    assert results.scores.sort_values(["seed", "metric"]).reset_index(drop=True)["value"].equals(
        again.scores.sort_values(["seed", "metric"]).reset_index(drop=True)["value"])


def test_cells_ship_the_dataset_path_not_the_data(shared_h5ad, tmp_path, monkeypatch):
    """What the client sends a worker: a path into the shared cache and settings, a few kB."""
    shipped = []

    def capture(tasks, n_jobs, scheduler):
        shipped.extend(tasks)
        return runner._sequential(tasks, 1, None)

    monkeypatch.setitem(runner._BACKENDS, "dask", capture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner.run(config_for(shared_h5ad, "nmf"), cache=tmp_path / "cache", backend="dask", n_jobs=2,
                   progress=False)
    assert len(shipped) == 3
    for task in shipped:
        assert Path(task.dataset.path).is_file()
        assert Path(task.dataset.path).is_relative_to(tmp_path / "cache")
        assert len(pickle.dumps(task)) < 20_000  # no AnnData inside: the worker reads the path
