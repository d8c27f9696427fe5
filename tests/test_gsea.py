"""Pre-ranked GSEA: hand-worked running sums, gseapy's statistics, parity with gseapy.prerank,
the blitzgsea engine, reproducibility and input errors."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from enrichment_data import planted_softmax
from tolerances import sum_rtol

from topiceval.errors import InputError
from topiceval.examples import EXAMPLES
from topiceval.gene_sets import GeneSets
from topiceval.io import read_outputs
from topiceval.metrics import GSEA_COLUMNS, gsea_rankings, prerank_gsea, topic_gsea
from topiceval.metrics.gsea import _statistics


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- independent references
def running_sum_es(values: np.ndarray, members: np.ndarray, equal_weights: bool = False):
    """The textbook running sum (Subramanian et al. 2005, weight 1) over the whole ranked list.

    ``values`` in ranked order (largest first), ``members`` a boolean mask in the same order.
    Returns ES (largest deviation from zero) and the leading edge (positions, gseapy's order).
    """
    n, m = values.size, int(members.sum())
    hit = np.abs(values) * members if not equal_weights else members.astype(float)
    steps = np.where(members, hit / hit.sum(), -1.0 / (n - m))
    walk = np.cumsum(steps)
    es = walk[np.argmax(np.abs(walk))]
    hits = np.flatnonzero(members)
    if es >= 0:
        edge = hits[hits <= np.argmax(walk)]
    else:
        edge = hits[hits >= np.argmin(walk)][::-1]
    return es, edge


def gseapy_statistics(es: float, null: np.ndarray):
    """NES, p and normalised null of one set, literally as gseapy's GSEASummary computes them."""
    pos, neg = null[null >= 0], null[null < 0]
    pos_mean = pos.mean() if pos.size else es
    neg_mean = neg.mean() if neg.size else es
    nes = es / pos_mean if es >= 0 else es / abs(neg_mean)
    if es < 0:
        deno, nomi = (null < 0).sum(), (null <= es).sum()
    else:
        deno, nomi = (null >= 0).sum(), (null >= es).sum()
    pval = 1.0 if deno == 0 else nomi / deno
    normalised = np.where(null >= 0, null / pos_mean, null / abs(neg_mean))
    return nes, pval, normalised


def gseapy_fdr(nes: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """gseapy's FDR (stats.rs, GSEAResult::fdr) with plain counting loops."""
    out = []
    for e in nes:
        if e < 0:
            nes_higher, all_higher = (nes <= e).sum(), (pooled <= e).sum()
            all_pos, nes_pos = (pooled < 0).sum(), (nes < 0).sum()
        else:
            nes_higher, all_higher = (nes >= e).sum(), (pooled >= e).sum()
            all_pos, nes_pos = (pooled >= 0).sum(), (nes >= 0).sum()
        phi_norm = all_higher / all_pos if all_pos > 0 else 0.0
        phi_obs = nes_higher / nes_pos if nes_pos > 0 else 0.0
        out.append(1.0 if phi_obs == 0 else min(1.0, max(0.0, phi_norm / phi_obs)))
    return np.array(out)


# --------------------------------------------------------------------------- hand-worked
@pytest.fixture(scope="module")
def tiny():
    genes = ["A", "B", "C", "D", "E", "F"]
    values = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    sets = GeneSets.from_dict({"top": ["A", "C"], "bottom": ["E", "F"], "absent": ["A", "Z1", "Z2"]})
    return values, genes, sets


def test_hand_worked_running_sums(tiny):
    values, genes, sets = tiny
    table = prerank_gsea(values, genes, sets, min_size=1, n_perm=50, seed=0)
    assert list(table.columns) == list(GSEA_COLUMNS)
    top = table.set_index("term").loc["top"]
    # hits A (6) and C (4): +0.6, miss -0.25, +0.4 -> peak 0.75 after C
    assert top.es == pytest.approx(0.75, abs=1e-12)
    assert top.leading_edge == "A;C" and top.set_size == 2
    bottom = table.set_index("term").loc["bottom"]
    # four misses of 1/4 reach -1 before E; the edge lists the bottom gene first
    assert bottom.es == pytest.approx(-1.0, abs=1e-12)
    assert bottom.leading_edge == "F;E"
    absent = table.set_index("term").loc["absent"]  # cut to the model's genes: {A}
    assert absent.set_size == 1 and absent.es == pytest.approx(1.0)


def test_es_matches_the_textbook_running_sum_on_real_rankings(reactome):
    """Every (topic, set) of the Yan NMF example (ties at zero weight included)."""
    outputs = read_outputs(EXAMPLES["yan_nmf"].topic_gene)
    table = quiet(prerank_gsea, outputs.topic_gene, outputs.gene_names, reactome, n_perm=20)
    members = reactome.to_dict()
    upper = np.char.upper(outputs.gene_names.astype(str))
    worst = 0.0
    for k in range(outputs.n_topics):
        order = np.argsort(-outputs.topic_gene[k], kind="stable")
        for row in table[table["topic"] == k].itertuples():
            mask = np.isin(upper[order], members[row.term])
            es, edge = running_sum_es(outputs.topic_gene[k, order], mask)
            worst = max(worst, abs(es - row.es))
            assert row.leading_edge == ";".join(outputs.gene_names[order[edge]])
    assert worst < 1e-10
    assert len(table) == outputs.n_topics * 194


def test_statistics_are_gseapy_definitions(rng):
    es = rng.normal(scale=0.3, size=(2, 40))
    null = rng.normal(scale=0.25, size=(2, 40, 300)).astype(np.float32)
    null[0, 3] = np.abs(null[0, 3])  # a set with no negative null ES
    es[0, 3] = -0.2                  # ... and a negative ES: normalised by itself, p = 1
    es[1, 5] = 0.0
    expected = [[gseapy_statistics(es[k, s], null[k, s].astype(np.float64)) for s in range(40)] for k in range(2)]
    nes, pval, fdr = _statistics(es, null.copy())
    for k in range(2):
        want_nes = np.array([e[0] for e in expected[k]])
        want_p = np.array([e[1] for e in expected[k]])
        pooled = np.concatenate([e[2] for e in expected[k]])
        # the null is float32: its means over 300 permutations are good to sum_rtol(300)
        np.testing.assert_allclose(nes[k], want_nes, rtol=sum_rtol(300))
        np.testing.assert_allclose(pval[k], want_p, rtol=0, atol=0)
        np.testing.assert_allclose(fdr[k], gseapy_fdr(want_nes, pooled), rtol=1e-6, atol=1e-6)
    assert pval[0, 3] == 1.0 and nes[0, 3] == pytest.approx(-1.0)


def test_zero_weight_sets_walk_with_equal_weights():
    genes = [f"G{i}" for i in range(30)]
    values = np.r_[np.linspace(3, 1, 20), np.zeros(10)][None, :]
    sets = GeneSets.from_dict({"zeros": genes[22:25], "mixed": genes[0:3] + genes[25:28]})
    result = topic_gsea(values, genes, sets, min_size=3, n_perm=200, seed=1)
    table, info = result.table.set_index("term"), result.info
    mask = np.zeros(30, dtype=bool)
    mask[22:25] = True
    es, _ = running_sum_es(values[0], mask, equal_weights=True)
    assert table.loc["zeros", "es"] == pytest.approx(es, abs=1e-12) and es < 0
    mask = np.zeros(30, dtype=bool)
    mask[[0, 1, 2, 25, 26, 27]] = True
    assert table.loc["mixed", "es"] == pytest.approx(running_sum_es(values[0], mask)[0], abs=1e-12)
    assert info["n_pairs_zero_weight"] == 1
    # a random 3-set falls among the 10 zero-weight genes with probability C(10,3)/C(30,3) = 3 %
    assert 0 < info["n_null_zero_weight"] < 30


# --------------------------------------------------------------------------- parity with gseapy
@pytest.fixture(scope="module")
def parity(yan_genes, reactome):
    """Two planted softmax topics, native and gseapy engines at 1000 permutations."""
    beta, planted = planted_softmax(yan_genes, reactome, n_topics=2, n_planted=8, boost=1.0, seed=0)
    native = quiet(prerank_gsea, beta, yan_genes, reactome, seed=0)
    reference = quiet(prerank_gsea, beta, yan_genes, reactome, engine="gseapy", seed=0, n_jobs=2)
    return beta, planted, native, reference


def significant(table: pd.DataFrame, fdr: float) -> set:
    hits = table[table["fdr"] <= fdr]
    return set(zip(hits["topic"], hits["term"], strict=True))


def test_parity_es_identical_to_gseapy(parity):
    _, _, native, reference = parity
    assert list(native["term"]) == list(reference["term"])
    np.testing.assert_allclose(native["es"], reference["es"], rtol=0, atol=1e-10)
    assert (native["leading_edge"] == reference["leading_edge"]).all()


def test_parity_nes_and_significant_sets(parity):
    _, planted, native, reference = parity
    assert np.corrcoef(native["nes"], reference["nes"])[0, 1] >= 0.99
    ours, theirs = significant(native, 0.05), significant(reference, 0.05)
    assert len(ours) >= 50
    assert len(ours & theirs) / len(ours | theirs) >= 0.8
    # the planted pathways are found
    found = {(k, term) for k, terms in enumerate(planted) for term in terms}
    assert len(found & ours) >= 0.75 * len(found)


@pytest.mark.parametrize("source", ["planted", "yan_nmf"])
def test_es_identical_to_the_reference_call(source, parity, yan_genes, reactome):
    """The authors' call: gseapy.prerank on a gene-indexed Series with its default sorting (ES and
    leading edges do not depend on the permutations, so few are run).

    The NMF example's values are rounded, so a few non-zero values are tied; gseapy orders tied
    genes arbitrarily (and says so), topiceval by gene index. Only sets holding such a gene may
    differ, by at most a miss step or two; tied zeros at the bottom cannot move an ES."""
    import gseapy

    if source == "planted":
        ranking = parity[0][0]
    else:
        ranking = read_outputs(EXAMPLES["yan_nmf"].topic_gene).topic_gene[0]
    ours = quiet(prerank_gsea, ranking[None, :], yan_genes, reactome, n_perm=10).set_index("term")
    result = gseapy.prerank(rnk=pd.Series(ranking, index=yan_genes), gene_sets=reactome.to_dict(),
                            permutation_num=10, outdir=None, no_plot=True, seed=123, threads=1).res2d
    result = result.set_index("Term")
    assert set(result.index) == set(ours.index) and len(ours) == 194
    ours = ours.loc[result.index]
    difference = np.abs(ours["es"].to_numpy() - result["ES"].astype(float).to_numpy())
    values = pd.Series(ranking, index=np.char.upper(yan_genes.astype(str)))
    tied = set(values[(values > 0) & values.duplicated(keep=False)].index)
    members = reactome.to_dict()
    for term, diff, size in zip(result.index, difference, ours["set_size"], strict=True):
        if diff > 1e-10:
            assert tied & set(members[term]), term
            assert diff <= 2 / (yan_genes.size - size)
    assert (difference <= 1e-10).mean() >= (1.0 if source == "planted" else 0.9)
    same_edge = [set(a.split(";")) == set(b.split(";"))
                 for a, b, d in zip(ours["leading_edge"], result["Lead_genes"], difference, strict=True)
                 if d <= 1e-10]
    assert all(same_edge)


def test_same_seed_same_output_and_threads_change_nothing(parity, yan_genes, reactome):
    matrix, _, native, _ = parity
    again = quiet(prerank_gsea, matrix, yan_genes, reactome, seed=0, n_jobs=2)
    pd.testing.assert_frame_equal(native, again)
    other = quiet(prerank_gsea, matrix, yan_genes, reactome, seed=1)
    np.testing.assert_array_equal(native["es"], other["es"])
    assert not np.array_equal(native["nes"], other["nes"])
    assert np.corrcoef(native["nes"], other["nes"])[0, 1] > 0.99


def test_memory_bounds_change_nothing(parity, yan_genes, reactome, monkeypatch):
    """Small work blocks, one topic per null block and a few permutations per chunk: same table."""
    import topiceval.metrics.gsea as gsea

    matrix, _, native, _ = parity
    monkeypatch.setattr(gsea, "_NULL_BYTES", 194 * 1000 * 4)       # one topic per block
    monkeypatch.setattr(gsea, "_POSITION_BYTES", 300 * 8078 * 2)   # 300 permutations per chunk
    monkeypatch.setattr(gsea, "_BLOCK_ELEMENTS", 5000)             # tiny work arrays
    pd.testing.assert_frame_equal(quiet(prerank_gsea, matrix, yan_genes, reactome, seed=0), native)


def test_scores_count_significant_pairs(parity, yan_genes, reactome):
    matrix, _, native, _ = parity
    result = quiet(topic_gsea, matrix, yan_genes, reactome, seed=0, fdr=0.05)
    pd.testing.assert_frame_equal(result.table.drop(columns="significant"), native.drop(columns="significant"))
    pairs = significant(native, 0.05)
    terms = {term for _, term in pairs}
    assert result["GSEA_N"] == len(terms)
    assert result["GSEA_U"] == pytest.approx(len(terms) / len(pairs))
    assert result["GSEA_Q"] == pytest.approx(len(terms) ** 2 / len(pairs))
    np.testing.assert_array_equal(result.per_topic["GSEA_N"], [sum(t == k for t, _ in pairs) for k in range(2)])


def test_blitzgsea_engine(yan_genes, reactome):
    """blitzgsea centres the ranking: its ES is the running sum of the centred values."""
    beta, planted = planted_softmax(yan_genes, reactome, n_topics=1, n_planted=8, boost=1.0, seed=4)
    state = np.random.get_state()[1].copy()
    table = quiet(prerank_gsea, beta, yan_genes, reactome, engine="blitzgsea", seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG restored
    assert list(table.columns) == list(GSEA_COLUMNS) and len(table) == 194
    assert np.isfinite(table[["es", "nes", "pval", "fdr"]].to_numpy()).all()
    order = np.argsort(-beta[0], kind="stable")
    centred = beta[0, order] - beta[0].mean()
    upper = np.char.upper(yan_genes.astype(str))[order]
    members = reactome.to_dict()
    for row in table.itertuples():
        es, _ = running_sum_es(centred, np.isin(upper, members[row.term]))
        assert row.es == pytest.approx(es, abs=1e-10)
        assert set(row.leading_edge.split(";")) <= set(members[row.term]) | {""}
    # the planted pathways stand out, and its NES follow the native ones
    is_planted = table["term"].isin(planted[0])
    assert table[is_planted]["pval"].median() < 0.05 < table[~is_planted]["pval"].median()
    native = quiet(prerank_gsea, beta, yan_genes, reactome, seed=0)
    assert np.corrcoef(table["nes"], native["nes"])[0, 1] > 0.8


# --------------------------------------------------------------------------- options and errors
def test_rank_by_log_is_the_centred_log(yan_genes, reactome):
    beta, _ = planted_softmax(yan_genes, reactome, n_topics=1, n_planted=4, boost=1.0, seed=2)
    ranking = gsea_rankings(beta, "log")
    np.testing.assert_allclose(ranking, np.log(beta) - np.log(beta).mean(axis=1, keepdims=True))
    table = quiet(prerank_gsea, beta, yan_genes, reactome, rank_by="log", n_perm=20)
    order = np.argsort(-ranking[0], kind="stable")
    upper = np.char.upper(yan_genes.astype(str))[order]
    members = reactome.to_dict()
    for row in table.head(40).itertuples():
        es, _ = running_sum_es(ranking[0, order], np.isin(upper, members[row.term]))
        assert row.es == pytest.approx(es, abs=1e-10)
    with pytest.raises(InputError, match="rank_by='log' needs positive"):
        gsea_rankings(np.array([[1.0, 0.0, 2.0]]), "log")


def test_mostly_tied_rankings_warn(tiny):
    _, genes, sets = tiny
    values = np.array([[3.0, 0.0, 0.0, 0.0, 0.0, 1.0], [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    with pytest.warns(UserWarning, match=r"1 topic\(s\) is mostly ties \(topics 0"):
        table = prerank_gsea(values, genes, sets, min_size=1, n_perm=10)
    assert table.attrs["info"]["topics_mostly_tied"] == [0]


def test_nothing_tested_gives_an_empty_typed_table(tiny):
    values, genes, sets = tiny
    with pytest.warns(UserWarning, match="no gene set has between 15 and 500"), \
            pytest.warns(UserWarning, match="GSEA_U is undefined"):
        result = topic_gsea(values, genes, sets)
    assert result.table.empty and list(result.table.columns) == list(GSEA_COLUMNS)
    assert result.table["es"].dtype == np.float64 and result.table["significant"].dtype == bool
    assert result["GSEA_N"] == 0 and np.isnan(result["GSEA_U"])


@pytest.mark.parametrize("kwargs, message", [
    ({"engine": "fgsea"}, "engine must be one of native, gseapy, blitzgsea"),
    ({"rank_by": "rank"}, "rank_by must be one of"),
    ({"n_perm": 0}, "n_perm must be at least 1"),
    ({"min_size": 10, "max_size": 5}, "larger than gsea_max_size"),
    ({"fdr": 1.5}, "fdr must be a number in"),
    ({"seed": -1}, "seed must be at least 0"),
    ({"n_jobs": 0}, "n_jobs must be a non-zero"),
])
def test_bad_options(tiny, kwargs, message):
    values, genes, sets = tiny
    with pytest.raises(InputError, match=message):
        prerank_gsea(values, genes, sets, **kwargs)


def test_nan_ranking_is_an_error(tiny):
    values, genes, sets = tiny
    bad = values.copy()
    bad[0, 2] = np.nan
    with pytest.raises(InputError, match="1 NaN"):
        prerank_gsea(bad, genes, sets, min_size=1)


def test_missing_engine_names_the_extra(tiny, monkeypatch):
    values, genes, sets = tiny
    monkeypatch.setitem(sys.modules, "gseapy", None)  # import gseapy -> ImportError
    with pytest.raises(InputError, match=r'pip install "topiceval\[gsea\]"'):
        prerank_gsea(values, genes, sets, min_size=1, engine="gseapy")
