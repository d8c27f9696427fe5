"""The compiled GSEA kernels (numba) and the torch walk against the numpy reference engine.

Kernels on identical permutations: random places equal, null ES equal to the numpy null (float32
rounding) and to a float64 running sum, statistics with exactly the reference's counts. End to
end: the default engine against the reference engine with the same seed, across thread counts,
torch (CPU build) against numba, and the calibration of nominal p under the null.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.stats
from enrichment_data import planted_softmax

import topiceval.metrics.gsea as gsea
from topiceval.errors import InputError
from topiceval.examples import EXAMPLES
from topiceval.io import read_outputs
from topiceval.metrics import prerank_gsea
from topiceval.metrics import _gsea_numba as kernels


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def with_backend(monkeypatch, backend):
    """Route the native engine to one backend: ``("numpy", None)`` is the reference engine."""
    monkeypatch.setattr(gsea, "_resolve_device", lambda device: backend)


# --------------------------------------------------------------------------- kernels
@pytest.fixture(scope="module")
def walk_data(yan_genes, reactome):
    """The Yan NMF example (its first topic with 3/4 of its weights zeroed, so that zero-weight
    null samples occur), Reactome sets cut to its genes and sorted by size, 60 relabellings."""
    outputs = read_outputs(EXAMPLES["yan_nmf"].topic_gene)
    ranking = outputs.topic_gene
    n_genes = ranking.shape[1]
    members, sizes, _ = gsea._members(reactome, np.asarray(outputs.gene_names, dtype=object), 15, 500)
    by_size = np.argsort(sizes, kind="stable")
    members, sizes = members[by_size], sizes[by_size]
    order = np.argsort(-ranking, axis=1, kind="stable")
    weights = np.abs(np.take_along_axis(ranking, order, axis=1))
    weights[0, n_genes // 4:] = 0  # 3/4 of the genes at weight 0: some null samples hit only them
    rng = np.random.default_rng(3)
    relabel = rng.permuted(np.tile(np.arange(n_genes, dtype=np.int16), (60, 1)), axis=1)
    inverse = np.argsort(relabel, axis=1).astype(np.int32)
    by_gene = sp.csr_matrix(members.T)
    places = gsea._random_places(by_gene, inverse, np.int16)
    return weights, members, sizes, inverse, by_gene, places


def test_random_places_equal_the_reference(walk_data):
    _, members, _, inverse, by_gene, places = walk_data
    out = np.empty_like(places)
    kernels.random_places(inverse, by_gene.indptr.astype(np.int64), by_gene.indices.astype(np.int32),
                          members.indptr.astype(np.int64), out)
    np.testing.assert_array_equal(out, places)


def reference_null(weights_t, members, sizes, places, n_genes):
    """The numpy reference null (``gsea._null_group`` per size group) and its zero-weight count."""
    null = np.empty((weights_t.shape[1], sizes.size, places.shape[0]), dtype=np.float32)
    bounds = np.flatnonzero(np.diff(sizes)) + 1
    n_flat = 0
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, sizes.size], strict=True):
        lo, hi = members.indptr[a], members.indptr[b]
        n_flat += gsea._null_group(weights_t, places[:, lo:hi], int(sizes[a]), null[:, a:b], n_genes)
    return null, n_flat


class _Null(np.ndarray):
    flat_count: np.ndarray


def compiled_null(weights_t, members, sizes, places, n_genes):
    """The compiled null as ``(topics, sets, relabellings)`` (the kernel writes relabellings first,
    topics as padded SIMD lanes last) with its zero-weight counts in ``.flat_count``."""
    n_topics = weights_t.shape[1]
    weights_p = kernels.lane_groups(weights_t)
    out = np.full((places.shape[0], sizes.size, weights_p.shape[1]), np.nan, dtype=np.float32)
    flat = np.zeros(places.shape[0], dtype=np.int64)
    kernels.null_es(weights_p, places, members.indptr.astype(np.int64), sizes.astype(np.int64),
                    n_genes, n_topics, out, flat)
    assert np.isfinite(out).all()  # every lane written, padding included
    null = np.ascontiguousarray(out[:, :, :n_topics].transpose(2, 1, 0)).view(_Null)
    null.flat_count = flat
    return null


def test_null_kernel_equals_the_numpy_null_and_a_float64_walk(walk_data):
    weights, members, sizes, _, _, places = walk_data
    n_topics, n_genes = weights.shape
    weights_t = np.ascontiguousarray(weights.T, dtype=np.float32)
    null = compiled_null(weights_t, members, sizes, places, n_genes)
    flat = null.flat_count
    reference, n_flat = reference_null(weights_t, members, sizes, places, n_genes)
    assert n_flat > 0 and flat.sum() == n_flat  # zero-weight samples: the same ones
    np.testing.assert_allclose(null, reference, rtol=0, atol=1e-6)
    # float64 running sums of the same samples (textbook walk over every gene)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(300):
        k, s, j = rng.integers(n_topics), rng.integers(sizes.size), rng.integers(places.shape[0])
        hit = np.zeros(n_genes, dtype=bool)
        hit[places[j, members.indptr[s]:members.indptr[s + 1]]] = True
        w = weights[k] * hit
        if w.sum() == 0:
            w = hit.astype(float)
        walk = np.cumsum(np.where(hit, w / w.sum(), -1.0 / (n_genes - hit.sum())))
        worst = max(worst, abs(walk[np.argmax(np.abs(walk))] - null[k, s, j]))
    assert worst <= 1e-5


def test_null_kernel_walks_pairs_of_lane_groups_like_single_ones(walk_data):
    """40 topics: lanes 0-31 go through the two-vector walk, 32-47 through the one-vector walk
    (8 of them padding); zero-weight topics in both. Every topic's null is the numpy null."""
    weights, members, sizes, _, _, places = walk_data
    n_genes = weights.shape[1]
    many = np.concatenate([weights] * 4)  # 40 topics; topics 0, 10, 20, 30 are 3/4 zeros
    many[25] = 0.0  # all zero: every sample of topic 25 is walked with equal weights
    weights_t = np.ascontiguousarray(many.T, dtype=np.float32)
    rows = places[:12]
    null = compiled_null(weights_t, members, sizes, rows, n_genes)
    reference, n_flat = reference_null(weights_t, members, sizes, rows, n_genes)
    assert null.flat_count.sum() == n_flat >= sizes.size * rows.shape[0]
    np.testing.assert_allclose(null, reference, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(null[:10], null[10:20])  # the same topic in another lane
    np.testing.assert_array_equal(null[:10], null[30:40])


def dyadic_nulls(rng, n_topics=3, n_sets=60, n_perm=256):
    """Nulls on a grid of 1/16 (ties and exact zeros; sums exact in float64), with one-sided sets
    (all >= 0, all < 0, all zero) and observed ES equal to null values, zero and beyond the null."""
    null = (rng.integers(-12, 13, size=(n_topics, n_sets, n_perm)) / 16).astype(np.float32)
    null[:, 0] = np.abs(null[:, 0])                 # no negative null
    null[:, 1] = -np.abs(null[:, 1]) - np.float32(1 / 16)  # no non-negative null
    null[:, 2] = 0                                  # all zero: mean 0, NES of ES > 0 infinite
    es = rng.integers(-14, 15, size=(n_topics, n_sets)) / 16
    es[:, 3] = 0.0
    es[:, 1] = -0.25
    es[:, 0] = -0.5   # negative ES, no negative null: p = 1, "normalised" by itself
    es[:, 2] = 0.5
    return es, null


def kernel_layout(null, pad=5):
    """``(topics, sets, P)`` as the kernels lay the null out: ``(P, sets, lanes)``, with ``pad``
    extra lanes of garbage that the statistics must ignore."""
    out = np.full((null.shape[2], null.shape[1], null.shape[0] + pad), -7.0, dtype=np.float32)
    out[:, :, :null.shape[0]] = null.transpose(2, 1, 0)
    return out


def test_statistics_kernel_counts_equal_the_reference(rng):
    es, null = dyadic_nulls(rng)
    nes_ref, pval_ref, fdr_ref = gsea._statistics(es, null.copy())
    nes, pval, fdr = (np.empty_like(es) for _ in range(3))
    laid_out = kernel_layout(null)
    before = laid_out.copy()
    kernels.statistics(es, laid_out, nes, pval, fdr)
    np.testing.assert_array_equal(laid_out, before)     # the null is left as it was
    np.testing.assert_array_equal(pval, pval_ref)   # counts of at-least-as-extreme null ES
    np.testing.assert_array_equal(fdr, fdr_ref)     # counts of the pooled normalised null
    np.testing.assert_allclose(nes, nes_ref, rtol=1e-12)
    assert np.isinf(nes[:, 2]).all() and np.isnan(fdr[:, 2]).all()
    assert (pval[:, 0] == 1.0).all() and (nes[:, 3] == 0).all()
    assert 0 < (fdr < 1).mean() < 1


def test_statistics_kernel_on_continuous_nulls(rng):
    """Real-valued nulls (sums no longer exact): NES to rounding, p and FDR equal."""
    es = rng.normal(scale=0.3, size=(4, 80))
    null = rng.normal(scale=0.25, size=(4, 80, 500)).astype(np.float32)
    nes_ref, pval_ref, fdr_ref = gsea._statistics(es, null.copy())
    nes, pval, fdr = (np.empty_like(es) for _ in range(3))
    kernels.statistics(es, kernel_layout(null), nes, pval, fdr)
    np.testing.assert_allclose(nes, nes_ref, rtol=1e-12)
    np.testing.assert_array_equal(pval, pval_ref)
    np.testing.assert_allclose(fdr, fdr_ref, rtol=1e-12, atol=0)


def test_torch_walk_equals_the_numba_walk(walk_data):
    from topiceval.metrics._gsea_torch import NullWalker

    weights, members, sizes, _, _, places = walk_data
    n_topics, n_genes = weights.shape
    weights_t = np.ascontiguousarray(weights.T, dtype=np.float32)
    null = compiled_null(weights_t, members, sizes, places, n_genes)
    walker = NullWalker(members.indptr, sizes, n_genes, "cpu")
    null_torch, flat_torch = walker.null_es(weights_t, places)  # (relabellings, sets, topics)
    np.testing.assert_array_equal(flat_torch, null.flat_count)
    np.testing.assert_allclose(null_torch.transpose(2, 1, 0), null, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def planted(yan_genes, reactome):
    beta, _ = planted_softmax(yan_genes, reactome, n_topics=4, n_planted=8, boost=1.0, seed=5)
    return beta


@pytest.fixture(scope="module")
def compiled_table(planted, yan_genes, reactome):
    return quiet(prerank_gsea, planted, yan_genes, reactome, seed=0)


def test_compiled_engine_equals_the_reference_engine(planted, compiled_table, yan_genes, reactome, monkeypatch):
    with_backend(monkeypatch, ("numpy", None))
    reference = quiet(prerank_gsea, planted, yan_genes, reactome, seed=0)
    ours = compiled_table
    pd.testing.assert_frame_equal(ours[["topic", "term", "set_size", "es", "leading_edge"]],
                                  reference[["topic", "term", "set_size", "es", "leading_edge"]])
    assert (ours["pval"] == reference["pval"]).mean() >= 0.999
    np.testing.assert_allclose(ours["nes"], reference["nes"], rtol=1e-5)
    for level in (0.01, 0.05, 0.25):
        assert ((ours["fdr"] <= level) == (reference["fdr"] <= level)).all()
    assert (ours["fdr"] <= 0.05).sum() >= 20


def test_threads_change_nothing(planted, compiled_table, yan_genes, reactome):
    for n_jobs in (1, 2, -1):
        again = quiet(prerank_gsea, planted, yan_genes, reactome, seed=0, n_jobs=n_jobs)
        pd.testing.assert_frame_equal(again, compiled_table)


def test_torch_engine_equals_numba(planted, compiled_table, yan_genes, reactome, monkeypatch):
    with_backend(monkeypatch, ("torch", "cpu"))
    table = quiet(prerank_gsea, planted[:2], yan_genes, reactome, seed=0)
    ours = compiled_table[compiled_table["topic"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(table[["topic", "term", "es", "leading_edge"]],
                                  ours[["topic", "term", "es", "leading_edge"]])
    assert (table["pval"] == ours["pval"]).mean() >= 0.999
    np.testing.assert_allclose(table["nes"], ours["nes"], rtol=1e-5)
    assert ((table["fdr"] <= 0.05) == (ours["fdr"] <= 0.05)).all()


def test_nominal_p_is_uniform_under_the_null(yan_genes, hallmark):
    """Random rankings (no signal): the nominal p of every (topic, set) is ~ U(0, 1).

    80 topics x 39 Hallmark sets = 3120 p-values (measured: KS distance 0.017, mean 0.507). The
    bound is the 0.1 % critical KS distance of as many independent draws, 1.95 / sqrt(3120) = 0.035
    (overlapping sets make the draws slightly dependent; the seed is fixed, so nothing flakes)."""
    rng = np.random.default_rng(11)
    rankings = rng.gamma(2.0, size=(80, yan_genes.size))
    table = quiet(prerank_gsea, rankings, yan_genes, hallmark, seed=7)
    p = table["pval"].to_numpy()
    assert p.size >= 80 * 30
    assert scipy.stats.kstest(p, "uniform").statistic < 1.95 / np.sqrt(p.size)
    assert abs(p.mean() - 0.5) < 0.02
    assert (table["fdr"] <= 0.01).mean() < 0.005  # nothing is enriched


def test_device_option(tiny_sets):
    values, genes, sets = tiny_sets
    cpu = prerank_gsea(values, genes, sets, min_size=1, n_perm=50, device="cpu")
    auto = prerank_gsea(values, genes, sets, min_size=1, n_perm=50, device="auto")
    from topiceval.metrics._gsea_torch import cuda_available

    if cuda_available():
        np.testing.assert_allclose(auto["nes"], cpu["nes"], rtol=1e-5)
    else:
        pd.testing.assert_frame_equal(auto, cpu)
        with pytest.raises(InputError, match="needs torch with CUDA"):
            prerank_gsea(values, genes, sets, min_size=1, device="cuda")
    with pytest.raises(InputError, match="device must be"):
        prerank_gsea(values, genes, sets, min_size=1, device="gpu")


@pytest.fixture
def tiny_sets():
    from topiceval.gene_sets import GeneSets

    genes = [f"G{i}" for i in range(40)]
    values = np.linspace(4, 0.1, 40)[None, :]
    sets = GeneSets.from_dict({"top": genes[:5], "spread": genes[::7], "bottom": genes[-6:]})
    return values, genes, sets


def test_evaluate_passes_the_device_and_records_it_as_runtime(yan_genes, reactome, planted):
    from topiceval import TopicOutputs, evaluate

    outputs = TopicOutputs(planted[:2], yan_genes, name="planted")
    result = quiet(evaluate, outputs, reactome, metrics="gsea", gsea_n_perm=50, gsea_device="auto")
    assert result.config["runtime"]["gsea_device"] == "auto"
    assert "gsea_device" not in result.config["options"]
    with pytest.raises(InputError, match="device must be"):
        quiet(evaluate, outputs, reactome, metrics="gsea", gsea_n_perm=50, gsea_device="tpu")


def test_more_genes_than_int16_places_equal_the_reference(monkeypatch):
    """40,000 genes: the random places are int32 (the kernels' other specialisation)."""
    from topiceval.gene_sets import GeneSets

    rng = np.random.default_rng(4)
    genes = [f"G{i}" for i in range(40_000)]
    sets = GeneSets.from_dict({f"s{j}": list(rng.choice(genes, size=int(rng.integers(15, 60)), replace=False))
                               for j in range(30)})
    values = rng.gamma(2.0, size=(3, len(genes)))
    ours = quiet(prerank_gsea, values, genes, sets, n_perm=40, seed=1)
    with_backend(monkeypatch, ("numpy", None))
    reference = quiet(prerank_gsea, values, genes, sets, n_perm=40, seed=1)
    np.testing.assert_array_equal(ours["pval"], reference["pval"])
    np.testing.assert_array_equal(ours["fdr"], reference["fdr"])
    np.testing.assert_allclose(ours["nes"], reference["nes"], rtol=1e-6)
