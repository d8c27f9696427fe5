"""d-scIGM: the model's formulas against scipy, its pathway mask, training, saving, the adapter."""

from __future__ import annotations

import random
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from topiceval.adapters import MissingExtraError, dscigm
from topiceval.adapters.registry import TrainParams
from topiceval.models.dscigm import (
    DSCIGM,
    DeepWeibullTopicModel,
    DSCIGMConfig,
    MaskedLinear,
    TrainingOptions,
    kl_weibull_gamma,
    pathway_mask,
    poisson_nll,
)

import topiceval as te
from topiceval import datasets
from topiceval.errors import InputError


@pytest.fixture(scope="module")
def pollen():
    return datasets.preprocess(datasets.load_default(), n_top_genes=1000)


# ----------------------------------------------------------------------------- formulas
def test_poisson_nll_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, size=(4, 7)).astype(np.float64)
    rate = rng.gamma(2.0, 2.0, size=(4, 7))
    expected = -stats.poisson.logpmf(x, rate).sum() / 4
    got = poisson_nll(torch.tensor(x), torch.tensor(rate)).item()
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("a", "b", "k", "lam"), [(2.0, 1.0, 0.5, 1.5), (0.7, 1.0, 1.2, 0.4), (3.0, 2.0, 0.2, 2.0)])
def test_weibull_gamma_kl_matches_numerical_integration(a, b, k, lam):
    from scipy.integrate import quad

    weibull = stats.weibull_min(c=1 / k, scale=lam)  # k = 1 / Weibull shape
    gamma = stats.gamma(a, scale=1 / b)  # rate b

    def integrand(t):
        return weibull.pdf(t) * (weibull.logpdf(t) - gamma.logpdf(t))

    expected = quad(integrand, 0, np.inf, limit=200)[0]
    got = kl_weibull_gamma(torch.tensor([[a]], dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                           torch.tensor([[k]], dtype=torch.float64), torch.tensor([[lam]], dtype=torch.float64))
    assert got.item() == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_decoder_is_a_sawtooth_of_column_softmaxes():
    config = DSCIGMConfig(n_genes=12, topic_sizes=(4, 3), hidden_sizes=(8, 5), embed_size=6, n_samples=3)
    torch.manual_seed(0)
    net = DeepWeibullTopicModel(config)
    rho = net.gene_embedding.detach().numpy().astype(np.float64)
    a0 = net.topic_embeddings[0].detach().numpy().astype(np.float64)
    a1 = net.topic_embeddings[1].detach().numpy().astype(np.float64)

    def softmax_columns(m):
        e = np.exp(m - m.max(axis=0))
        return e / e.sum(axis=0)

    phi0, phi1 = softmax_columns(rho @ a0.T), softmax_columns(a0 @ a1.T)
    np.testing.assert_allclose(net.phi(0).detach().numpy(), phi0, rtol=1e-5)
    np.testing.assert_allclose(net.phi(1).detach().numpy(), phi1, rtol=1e-5)
    np.testing.assert_allclose(net.topic_gene(0).numpy(), phi0.T, rtol=1e-5)
    np.testing.assert_allclose(net.topic_gene(1).numpy(), (phi0 @ phi1).T, rtol=1e-5)
    np.testing.assert_allclose(net.topic_gene(1).numpy().sum(axis=1), 1.0, rtol=1e-5)
    # the loss is the Poisson NLL of x under theta_0 Phi_0^T plus the KL terms
    x = torch.poisson(torch.full((5, 12), 2.0))
    out = net(x, x, sample=True, generator=torch.Generator().manual_seed(0))
    rate = out["theta"][0] @ net.phi(0).T
    assert out["nll"].item() == pytest.approx(poisson_nll(x, rate).item(), rel=1e-6)
    # the top layer's KL (reported unweighted) is weighted 0 in the loss by default (the authors' script)
    assert out["kl"][-1].item() > 0
    assert out["loss"].item() == pytest.approx((out["nll"] + sum(out["kl"][:-1])).item(), rel=1e-6)


def test_masked_linear_only_connects_pathway_genes():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.float32)  # 2 pathways x 4 genes
    torch.manual_seed(0)
    layer = MaskedLinear(mask)
    x = torch.randn(3, 4, requires_grad=True)
    layer(x).sum().backward()
    assert layer.values.numel() == 3 and torch.equal(layer.mask, mask)
    assert torch.all(layer.weight[mask == 0] == 0)
    changed = x.detach().clone()
    changed[:, 3] += 10.0  # gene 3 is in no pathway
    np.testing.assert_allclose(layer(changed).detach().numpy(), layer(x).detach().numpy())


def test_pathway_mask_matches_membership(reactome):
    genes = ["TP53", "MDM2", "CDKN1A", "NOT_A_GENE", "EGFR", "GRB2", "SOS1", "KRAS", "BRCA1", "ATM"]
    built = pathway_mask(genes, reactome, min_genes=3)
    sets = reactome.to_dict()
    upper = [g.upper() for g in genes]
    for column, name in enumerate(built.pathways):
        members = set(sets[name])
        expected = [g in members for g in upper]
        assert built.mask[:, column].toarray().ravel().tolist() == expected
        assert sum(expected) >= 3
    # every set with >= 3 of the genes is a unit
    kept = {name for name, members in sets.items() if len(set(members) & set(upper)) >= 3}
    assert set(built.pathways) == kept
    assert built.mask[3].nnz == 0
    with pytest.raises(InputError, match="no gene set"):
        pathway_mask(["NOPE1", "NOPE2"], reactome)


# ----------------------------------------------------------------------------- training
SMALL = {"n_layers": 2, "embed_size": 16, "hidden_sizes": (32, 16), "n_samples": 5}


@pytest.fixture(scope="module")
def trained(pollen):
    return dscigm.train(pollen, TrainParams(n_topics=8, epochs=12, seed=4, options=SMALL))


def test_adapter_outputs(trained, pollen):
    out = trained.outputs
    assert out.topic_gene.shape == (8, pollen.n_vars)
    assert out.cell_topic.shape == (pollen.n_obs, 8)
    assert out.cell_embedding.shape == (pollen.n_obs, 16)  # 2 layers x 8 topics
    assert list(out.gene_names) == list(pollen.var_names)
    # topic_gene is a float32 softmax over the genes, widened to float64: a sum of n_vars float32
    # terms is off by at most n_vars * eps(float32) relative; cell_topic is normalised in float64
    np.testing.assert_allclose(out.topic_gene.sum(axis=1), 1.0, rtol=pollen.n_vars * np.finfo(np.float32).eps)
    np.testing.assert_allclose(out.cell_topic.sum(axis=1), 1.0, rtol=100 * np.finfo(np.float64).eps)
    # cell_topic is the normalised first block of the embedding (layer 0's 50-sample averages)
    first = out.cell_embedding[:, :8]
    np.testing.assert_allclose(out.cell_topic, first / first.sum(axis=1, keepdims=True))
    assert trained.hyperparameters["input"] == "X" and trained.hyperparameters["variant"] == "dense"
    assert trained.hyperparameters["encoder_log1p"] is False
    assert trained.hyperparameters["schedule"] == "authors" and trained.hyperparameters["drop_last"] is True
    assert trained.hyperparameters["theta_estimate"] == "sampled"
    assert trained.info["skipped_steps"] == 0 and np.isfinite(trained.info["final_loss"])


def test_loss_decreases_and_model_round_trips(pollen, tmp_path):
    x = pollen.X
    model = DSCIGM(DSCIGMConfig(n_genes=pollen.n_vars, topic_sizes=(6, 4), hidden_sizes=(32, 16),
                                embed_size=16, n_samples=5), pollen.var_names, seed=0)
    model.fit(x, TrainingOptions(epochs=10, batch_size=64, lr=1e-2, progress=False), seed=0)
    losses = [h["loss"] for h in model.history]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "m")
    loaded = DSCIGM.load(tmp_path / "m")
    for a, b in zip(model.transform(x), loaded.transform(x), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.topic_gene(1), loaded.topic_gene(1))
    assert loaded.history == model.history and loaded.gene_names == list(pollen.var_names)
    with pytest.raises(InputError, match="missing"):
        DSCIGM.load(tmp_path / "nothing")


def test_same_seed_same_numbers_and_global_rng_untouched(trained, pollen):
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    t_state, n_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    again = dscigm.train(pollen, TrainParams(n_topics=8, epochs=12, seed=4, options=SMALL)).outputs
    np.testing.assert_array_equal(again.topic_gene, trained.outputs.topic_gene)
    np.testing.assert_array_equal(again.cell_embedding, trained.outputs.cell_embedding)
    assert torch.equal(torch.get_rng_state(), t_state)
    np.testing.assert_array_equal(np.random.get_state()[1], n_state)
    other = dscigm.train(pollen, TrainParams(n_topics=8, epochs=12, seed=5, options=SMALL)).outputs
    assert not np.allclose(other.topic_gene, trained.outputs.topic_gene)


def test_scored_through_evaluate(pollen, c2):
    # enough epochs to learn something: topics must separate cell types beyond the largest type
    out = dscigm.fit(pollen, 10, epochs=80, seed=0, n_layers=2, hidden_sizes=(256, 128), n_samples=10)
    labels = pollen.obs["cell_type"].to_numpy()
    ev = te.evaluate(out, gene_sets=c2, labels=labels)
    table = pd.crosstab(out.cell_topic.argmax(axis=1), labels)
    assert ev.scores["IP"] == pytest.approx(table.max(axis=1).sum() / len(labels))
    largest = pd.Series(labels).value_counts(normalize=True).iloc[0]
    assert ev.scores["IP"] > largest + 0.1  # 0.368 measured (largest type: 0.181)
    assert ev.scores["TD"] > 0.5 and np.isfinite(ev.scores["TC"])  # 0.98 measured


def test_pathway_masked_variant(pollen, reactome):
    result = dscigm.train(pollen, TrainParams(n_topics=5, epochs=2, seed=0,
                                              options={**SMALL, "prior": "reactome", "prior_min_genes": 5}))
    expected = pathway_mask(list(pollen.var_names), reactome, min_genes=5)
    assert result.info["prior"]["n_pathways"] == expected.n_pathways > 10
    assert result.hyperparameters["hidden_sizes"][0] == expected.n_pathways
    assert result.hyperparameters["variant"] == "pathway-masked"
    assert result.outputs.topic_gene.shape == (5, pollen.n_vars)


def test_counts_input_uses_log1p_encoder(pollen):
    result = dscigm.train(pollen, TrainParams(n_topics=4, epochs=1, layer="counts", options=SMALL))
    assert result.hyperparameters["encoder_log1p"] is True
    assert result.hyperparameters["input"] == "layers['counts']"


def test_bad_options(pollen):
    with pytest.raises(InputError, match="hidden_sizes"):
        dscigm.fit(pollen, 4, epochs=1, n_layers=3, hidden_sizes=(8, 8))
    with pytest.raises(InputError, match="hidden_sizes"):
        dscigm.fit(pollen, 4, epochs=1, hidden_sizes="wide")
    with pytest.raises(InputError, match="schedule"):
        dscigm.fit(pollen, 4, epochs=1, **SMALL, schedule="both")
    with pytest.raises(InputError, match="theta_estimate"):
        dscigm.fit(pollen, 4, epochs=1, **SMALL, theta_estimate="median")
    with pytest.raises(InputError, match="output_layer"):
        dscigm.fit(pollen, 4, epochs=1, n_layers=2, output_layer=2)
    with pytest.raises(InputError, match="no option"):
        dscigm.fit(pollen, 4, epochs=1, n_layer=2)


def test_missing_torch_names_the_extra(pollen, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r'pip install "topiceval\[dscigm\]"'):
        dscigm.fit(pollen, 3, epochs=1)


def test_sparse_and_dense_inputs_agree(pollen):
    x = sp.csr_matrix(pollen.X[:40])
    config = DSCIGMConfig(n_genes=pollen.n_vars, topic_sizes=(3,), hidden_sizes=(8,), embed_size=4, n_samples=2)
    a = DSCIGM(config, pollen.var_names, seed=1).fit(x, TrainingOptions(epochs=2, batch_size=16), seed=1)
    b = DSCIGM(config, pollen.var_names, seed=1).fit(x.toarray(), TrainingOptions(epochs=2, batch_size=16), seed=1)
    np.testing.assert_array_equal(a.topic_gene(), b.topic_gene())


@pytest.mark.parametrize("log1p", [False, True])
def test_centred_encoder_input(pollen, tmp_path, log1p):
    """encoder_center: the encoder sees x minus the training cells' mean (after log1p); it is saved."""
    counts = pollen.layers["counts"][:48]
    x = sp.csr_matrix(counts) if log1p else sp.csr_matrix(pollen.X[:48])
    config = DSCIGMConfig(n_genes=pollen.n_vars, topic_sizes=(3,), hidden_sizes=(8,), embed_size=4, n_samples=2,
                          encoder_center=True, encoder_log1p=log1p)
    model = DSCIGM(config, pollen.var_names, seed=0).fit(x, TrainingOptions(epochs=1, batch_size=16), seed=0)
    dense = x.toarray().astype(np.float64)
    seen = np.log1p(dense) if log1p else dense
    np.testing.assert_allclose(model.network.input_offset.numpy(), seen.mean(axis=0), rtol=1e-5, atol=1e-6)
    block = torch.from_numpy(dense[:5].astype(np.float32))
    np.testing.assert_allclose(model._encoder_input(block).numpy(), (seen[:5] - seen.mean(axis=0)), atol=1e-5)
    model.save(tmp_path / "m")
    loaded = DSCIGM.load(tmp_path / "m")
    assert torch.equal(loaded.network.input_offset, model.network.input_offset)
    np.testing.assert_array_equal(loaded.transform(x)[0], model.transform(x)[0])
    result = dscigm.train(pollen, TrainParams(n_topics=3, epochs=1, options={**SMALL, "encoder_center": "true"}))
    assert result.hyperparameters["encoder_center"] is True
