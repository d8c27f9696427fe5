"""scETM (PyPI scETM 0.5.0) through its adapter: shapes, outputs, seeding, saving, scoring."""

from __future__ import annotations

import random
import sys

import numpy as np
import pandas as pd
import pytest
from tolerances import sum_rtol
from topiceval.adapters import MissingExtraError, scetm
from topiceval.adapters.registry import TrainParams

import topiceval as te
from topiceval import datasets

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def pollen():
    return datasets.preprocess(datasets.load_default(), n_top_genes=1000)


@pytest.fixture(scope="module")
def trained(pollen):
    # batch_size < n_cells: the minibatch sampler shuffles, so its seeding matters
    params = TrainParams(n_topics=6, epochs=15, seed=7, options={"batch_size": 100, "emb_dim": 32})
    return scetm.train(pollen, params)


def test_outputs_shapes_and_genes(trained, pollen):
    out = trained.outputs
    assert out.topic_gene.shape == (6, pollen.n_vars)
    assert out.cell_topic.shape == (pollen.n_obs, 6)
    assert out.cell_embedding.shape == (pollen.n_obs, 6)
    assert list(out.gene_names) == list(pollen.var_names)
    # theta is the softmax of delta (the encoder mean), computed here independently
    delta = out.cell_embedding
    softmax = np.exp(delta - delta.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.cell_topic, softmax / softmax.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert trained.info["steps"] == 15 * 3  # ceil(299 / 100) minibatches per epoch
    assert trained.hyperparameters["n_topics"] == 6 and trained.hyperparameters["emb_dim"] == 32


def test_topic_gene_is_alpha_times_rho(trained, tmp_path):
    trained.save(tmp_path / "model")
    model = scetm.load(tmp_path / "model")
    alpha = model.alpha.detach().numpy().astype(np.float64)  # (K, L)
    rho = model.rho.detach().numpy().astype(np.float64)  # (L, V)
    # float32 weights; a product over L embedding dimensions, each rounded once
    bound = sum_rtol(alpha.shape[1]) * (np.abs(alpha) @ np.abs(rho))
    assert np.all(np.abs(trained.outputs.topic_gene - alpha @ rho) <= bound)


def test_same_seed_same_numbers_and_global_rng_untouched(trained, pollen):
    np.random.seed(123)
    random.seed(123)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()
    params = TrainParams(n_topics=6, epochs=15, seed=7, options={"batch_size": 100, "emb_dim": 32})
    again = scetm.train(pollen, params).outputs
    np.testing.assert_array_equal(again.topic_gene, trained.outputs.topic_gene)
    np.testing.assert_array_equal(again.cell_topic, trained.outputs.cell_topic)
    np.testing.assert_array_equal(np.random.get_state()[1], before_np)
    assert random.getstate() == before_py
    other = scetm.train(pollen, TrainParams(n_topics=6, epochs=15, seed=8,
                                            options={"batch_size": 100, "emb_dim": 32})).outputs
    assert not np.allclose(other.topic_gene, trained.outputs.topic_gene)


def test_heap_is_trimmed_every_few_steps_and_no_number_moves(trained, pollen, monkeypatch):
    """12,000 scETM steps grew a process by gigabytes of freed heap; the adapter trims it."""
    import topiceval.adapters.scetm as module
    from topiceval.adapters import _common

    if sys.platform.startswith("linux"):
        assert _common.trim_heap() is True  # glibc has malloc_trim
    calls = []
    monkeypatch.setattr(module, "TRIM_EVERY", 4)
    monkeypatch.setattr(module, "trim_heap", lambda: calls.append(1) or True)
    params = TrainParams(n_topics=6, epochs=15, seed=7, options={"batch_size": 100, "emb_dim": 32})
    again = module.train(pollen, params)
    steps = again.info["steps"]
    assert steps > 8 and len(calls) == steps // 4
    np.testing.assert_array_equal(again.outputs.topic_gene, trained.outputs.topic_gene)


def test_sampler_seed_alone_changes_the_result(pollen, monkeypatch):
    """Only the minibatch order differs: the adapter's seeded sampler is what makes runs repeat."""
    import topiceval.adapters.scetm as module
    import torch

    params = TrainParams(n_topics=4, epochs=4, seed=1, options={"batch_size": 64, "emb_dim": 16})
    threads = torch.get_num_threads()
    base = module.train(pollen, params).outputs
    assert torch.get_num_threads() == threads  # the adapter's thread setting is restored
    original = module._seeded_sampler
    monkeypatch.setattr(module, "_seeded_sampler", lambda seed: original(seed + 1))
    shuffled = module.train(pollen, params).outputs
    assert not np.allclose(base.topic_gene, shuffled.topic_gene)


def test_scored_through_evaluate(trained, pollen, c2):
    labels = pollen.obs["cell_type"].to_numpy()
    ev = te.evaluate(trained.outputs, gene_sets=c2, labels=labels)
    table = pd.crosstab(trained.outputs.cell_topic.argmax(axis=1), labels)
    assert ev.scores["IP"] == pytest.approx(table.max(axis=1).sum() / len(labels))
    assert 0 < ev.scores["TD"] <= 1 and np.isfinite(ev.scores["TC"])


def test_missing_library_names_the_extra(pollen, monkeypatch):
    monkeypatch.setitem(sys.modules, "scETM", None)  # import scETM now raises ImportError
    with pytest.raises(MissingExtraError, match=r'pip install "topiceval\[scetm\]"'):
        scetm.fit(pollen, 3, epochs=1)
