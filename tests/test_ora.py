"""ORA: hand-worked hypergeometric tails, BH scopes, options, and parity with gseapy.enrich."""

from __future__ import annotations

import warnings
from math import comb

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from enrichment_data import planted_top_genes

from topiceval import TopicOutputs
from topiceval.errors import InputError
from topiceval.examples import EXAMPLES
from topiceval.gene_sets import GeneSets
from topiceval.io import read_outputs
from topiceval.metrics import ORA_COLUMNS, over_representation, top_gene_indices, topic_ora


def tail(x: int, background: int, size: int, query: int) -> float:
    """P(X >= x) for the hypergeometric distribution, by exact binomial sums."""
    total = comb(background, query)
    return sum(comb(size, i) * comb(background - size, query - i)
               for i in range(x, min(size, query) + 1)) / total


@pytest.fixture(scope="module")
def small():
    """8 model genes, 4 sets over 12 collection genes; two topics with top 3."""
    sets = GeneSets.from_dict({
        "A": ["G1", "G2", "G3", "X1"],
        "B": ["G2", "G4"],
        "C": ["X1", "X2", "X3", "X4", "G5"],
        "D": ["X2", "X3", "X4", "X5"],
    })
    genes = ["g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8"]  # lower case: matched upper-cased
    beta = np.array([
        [9, 8, 7, 1, 1, 1, 1, 1],  # top: g1 g2 g3
        [1, 1, 1, 1, 9, 8, 7, 1],  # top: g5 g6 g7 (g6, g7 in no set)
    ], dtype=float)
    return beta, genes, sets


def test_hand_worked_gene_sets_background(small):
    beta, genes, sets = small
    table = over_representation(beta, genes, sets, 3, alpha=0.5)
    assert list(table.columns) == list(ORA_COLUMNS)
    # Collection universe: G1-G5, X1-X5 = 10 genes. Topic 0 query {G1,G2,G3} (3 known genes),
    # topic 1 query {G5} (G6, G7 are in no set, so outside the universe).
    expected = {
        (0, "A"): (3, 4, 3, "G1;G2;G3"),
        (0, "B"): (1, 2, 3, "G2"),
        (1, "C"): (1, 5, 1, "G5"),
    }
    assert set(zip(table["topic"], table["term"])) == set(expected)
    for row in table.itertuples():
        x, m, k, shared = expected[(row.topic, row.term)]
        assert (row.overlap, row.set_size, row.n_query, row.n_background) == (x, m, k, 10)
        assert row.pval == pytest.approx(tail(x, 10, m, k), rel=1e-12)
        assert row.genes == shared.lower()  # as the model names them
    # BH within topic 0 over its 2 hit sets; topic 1 has a single test (padj = p).
    p0 = table[table["topic"] == 0]["pval"].to_numpy()
    bh = np.minimum.accumulate((np.sort(p0) * 2 / np.arange(1, 3))[::-1])[::-1]
    np.testing.assert_allclose(np.sort(table[table["topic"] == 0]["padj"]), np.minimum(bh, 1), rtol=1e-12)
    row = table[table["topic"] == 1].iloc[0]
    assert row.padj == row.pval == pytest.approx(5 / 10)


def test_hand_worked_vocabulary_background(small):
    beta, genes, sets = small
    table = over_representation(beta, genes, sets, 3, background="vocabulary", alpha=0.5)
    # Universe: the 8 model genes; sets cut to them: A={G1,G2,G3}, B={G2,G4}, C={G5}, D={} (untested).
    # Every top gene is in the query (|Q| = 3 for both topics).
    got = {(r.topic, r.term): (r.overlap, r.set_size, r.n_query, r.n_background, r.pval)
           for r in table.itertuples()}
    assert got.keys() == {(0, "A"), (0, "B"), (1, "C")}
    assert got[(0, "A")][:4] == (3, 3, 3, 8)
    assert got[(0, "A")][4] == pytest.approx(1 / comb(8, 3), rel=1e-12)
    assert got[(0, "B")][:4] == (1, 2, 3, 8)
    assert got[(0, "B")][4] == pytest.approx(tail(1, 8, 2, 3), rel=1e-12)
    assert got[(1, "C")][:4] == (1, 1, 3, 8)
    assert got[(1, "C")][4] == pytest.approx(3 / 8, rel=1e-12)


def test_bh_scope_all_sets_adds_the_untouched_sets(small):
    beta, genes, sets = small
    hits = over_representation(beta, genes, sets, 3)
    every = over_representation(beta, genes, sets, 3, bh_scope="all_sets")
    np.testing.assert_array_equal(hits["pval"], every["pval"])
    # 4 tested sets per topic; those without overlap enter with p = 1.
    for topic in (0, 1):
        p = every[every["topic"] == topic]["pval"].to_numpy()
        padded = np.concatenate([p, np.ones(4 - p.size)])
        expected = multipletests(padded, method="fdr_bh")[1][: p.size]
        np.testing.assert_allclose(every[every["topic"] == topic]["padj"], expected, rtol=1e-12)
    assert (every["padj"].to_numpy() >= hits["padj"].to_numpy() - 1e-15).all()
    assert (every["padj"] > hits["padj"]).any()


def test_scores_and_size_filter(small):
    beta, genes, sets = small
    result = topic_ora(beta, genes, sets, 3, alpha=0.5)
    significant = result.table[result.table["significant"]]
    pairs = list(zip(significant["topic"], significant["term"]))
    n_unique = len({term for _, term in pairs})
    assert result["ORA_N"] == n_unique
    assert result["ORA_U"] == pytest.approx(n_unique / len(pairs))
    assert result["ORA_Q"] == pytest.approx(n_unique * n_unique / len(pairs))
    per_topic = result.per_topic["ORA_N"]
    np.testing.assert_array_equal(per_topic, [sum(t == k for t, _ in pairs) for k in range(2)])
    # Sizes are counted inside the background; B (2 genes) drops with min_size=3, the universe stays.
    filtered = over_representation(beta, genes, sets, 3, min_size=3, alpha=0.5)
    assert "B" not in set(filtered["term"])
    assert (filtered["n_background"] == 10).all()
    with pytest.warns(UserWarning, match="1 of 2 topic.*share no gene"):
        assert set(over_representation(beta, genes, sets, 3, max_size=2)["term"]) == {"B"}


def test_nothing_enriched_is_nan_with_warning_not_a_sentinel(small):
    beta, genes, sets = small
    with pytest.warns(UserWarning, match="ORA_U is undefined"):
        result = topic_ora(beta, genes, sets, 3, alpha=1e-6)
    assert result["ORA_N"] == 0 and result["ORA_Q"] == 0 and np.isnan(result["ORA_U"])


def test_topic_without_overlap_is_counted_not_an_error(small):
    beta, genes, sets = small
    beta = np.vstack([beta, [1, 1, 1, 1, 1, 9, 8, 7]])  # top g6 g7 g8: in no set
    with pytest.warns(UserWarning, match="1 of 3 topic.*share no gene"):
        result = topic_ora(beta, genes, sets, 3, alpha=0.5)
    assert result.info["topics_without_overlap"] == [2]
    assert result.info["topics_without_query"] == [2]
    assert 2 not in set(result.table["topic"])


def test_empty_table_keeps_its_dtypes(small):
    beta, genes, sets = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = over_representation(beta, genes, sets, 3, min_size=50)
    assert table.empty and list(table.columns) == list(ORA_COLUMNS)
    assert table["pval"].dtype == np.float64 and table["overlap"].dtype == np.int64
    assert table["significant"].dtype == bool


@pytest.mark.parametrize("kwargs, message", [
    ({"background": "genome"}, "background must be one of gene_sets, vocabulary"),
    ({"bh_scope": "global"}, "bh_scope must be one of"),
    ({"alpha": 0.0}, "alpha must be a number in"),
    ({"min_size": 5, "max_size": 2}, r"min_size \(5\) is larger than ora_max_size"),
    ({"top_genes": np.zeros((2, 4), dtype=int)}, "top_genes has shape"),
])
def test_bad_options(small, kwargs, message):
    beta, genes, sets = small
    with pytest.raises(InputError, match=message):
        over_representation(beta, genes, sets, 3, **kwargs)


def test_nan_and_bad_names(small):
    beta, genes, sets = small
    bad = beta.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        topic_ora(bad, genes, sets, 3)
    with pytest.raises(InputError, match="more than once"):
        topic_ora(beta, ["g1"] * 8, sets, 3)


# --------------------------------------------------------------------------- parity with gseapy
@pytest.fixture(scope="module")
def yan_nmf():
    return read_outputs(EXAMPLES["yan_nmf"].topic_gene)


def gseapy_enrich(outputs, gene_sets: GeneSets, topics, background=None) -> pd.DataFrame:
    """The reference: one gseapy.enrich call per topic on its top-10 genes (outdir=None)."""
    import gseapy  # in the test extra

    top = top_gene_indices(outputs.topic_gene, 10)
    library = gene_sets.to_dict()
    frames = []
    for k in topics:
        result = gseapy.enrich(gene_list=list(outputs.gene_names[top[k]]), gene_sets=library,
                               background=background, outdir=None, no_plot=True).res2d
        if result is not None:
            frames.append(result.assign(topic=k))
    return pd.concat(frames, ignore_index=True)


def assert_same_as_gseapy(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    merged = ours.merge(reference, left_on=["topic", "term"], right_on=["topic", "Term"],
                        how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    np.testing.assert_allclose(merged["pval"], merged["P-value"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(merged["padj"], merged["Adjusted P-value"], rtol=1e-9, atol=0)
    assert (merged["Overlap"] == merged["overlap"].astype(str) + "/" + merged["set_size"].astype(str)).all()
    assert all(set(a.split(";")) == set(b.split(";")) for a, b in zip(merged["genes"], merged["Genes"], strict=True))
    ours_sig = merged["padj"] <= 0.01
    assert (ours_sig == (merged["Adjusted P-value"] <= 0.01)).all()


@pytest.mark.parametrize("background", ["gene_sets", "vocabulary"])
def test_parity_with_gseapy_enrich_reactome(yan_nmf, reactome, background):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = over_representation(yan_nmf.topic_gene, yan_nmf.gene_names, reactome, 10, background=background)
    vocabulary = list(np.char.upper(yan_nmf.gene_names.astype(str))) if background == "vocabulary" else None
    reference = gseapy_enrich(yan_nmf, reactome, range(yan_nmf.n_topics), vocabulary)
    assert len(ours) == len(reference) > 300
    assert_same_as_gseapy(ours, reference)


def test_parity_with_gseapy_enrich_c2(yan_genes, c2):
    """C2 (the paper's collection) on topics with planted top genes, so that many pairs are
    significant; four topics keep gseapy quick."""
    beta = planted_top_genes(yan_genes, c2, n_topics=4, seed=3, n_distinct=3)
    outputs = TopicOutputs(beta, yan_genes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = topic_ora(beta, yan_genes, c2, 10)
    reference = gseapy_enrich(outputs, c2, range(4))
    assert_same_as_gseapy(result.table, reference)
    assert result.table["significant"].sum() >= 8
    # ORA_N / ORA_U from the reference table the way the authors' notebook computes them.
    enriched = reference[reference["Adjusted P-value"] <= 0.01]
    assert result["ORA_N"] == enriched["Term"].nunique()
    assert result["ORA_U"] == pytest.approx(enriched["Term"].nunique() / len(enriched), rel=1e-12)
    assert result["ORA_U"] < 1  # related C2 sets repeat across topics
