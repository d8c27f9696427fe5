"""Topic coherence against a hand-worked example and a slow, obviously-correct implementation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from topiceval.errors import InputError
from topiceval.gene_sets import GeneSets
from topiceval.metrics import npmi, top_gene_indices, topic_coherence

# Four documents (gene sets); Z is in none of them.
SETS = {"S1": ["A", "B", "C"], "S2": ["A", "B"], "S3": ["A", "D"], "S4": ["C", "E"]}
GENES = np.array(["A", "B", "C", "D", "E", "Z"], dtype=object)


def weights_for(*tops: list[str]) -> np.ndarray:
    """A topic-gene matrix whose topics rank the given genes first, in order."""
    matrix = np.full((len(tops), len(GENES)), 0.01)
    for k, genes in enumerate(tops):
        for rank, gene in enumerate(genes):
            matrix[k, list(GENES).index(gene)] = 1.0 - 0.1 * rank
    return matrix


def test_hand_worked_example():
    gs = GeneSets.from_dict(SETS)
    beta = weights_for(["A", "B", "C"], ["D", "E", "Z"])
    # By hand: P(A)=3/4, P(B)=P(C)=2/4, P(D)=P(E)=1/4.
    ab = math.log(0.5 / (0.75 * 0.5)) / -math.log(0.5)  # = log(4/3) / log 2
    ac = math.log(0.25 / (0.75 * 0.5)) / -math.log(0.25)  # = log(2/3) / log 4
    bc = math.log(0.25 / (0.5 * 0.5)) / -math.log(0.25)  # = 0
    topic0 = (ab + ac + bc) / 3
    assert ab == pytest.approx(0.4150374992788438)
    assert ac == pytest.approx(-0.2924812503605781)
    assert bc == 0.0

    with pytest.warns(UserWarning, match="1 top gene.*Z"):
        ref = topic_coherence(beta, GENES, gs, top_n=3, zero_cooccurrence=0.0)
    # Topic 1: D-E never co-occur (0 by the reference rule); Z is in no set (0, still counted).
    np.testing.assert_allclose(ref.per_topic["TC"], [topic0, 0.0], rtol=1e-14)
    assert ref.score == pytest.approx((topic0 + 0.0) / 2, rel=1e-14)
    assert ref.info["top_genes_not_in_gene_sets"] == ["Z"]
    assert ref.info["n_pairs_never_cooccur"] == 1
    assert ref.info["n_pairs_unknown_gene"] == 2

    with pytest.warns(UserWarning):
        limit = topic_coherence(beta, GENES, gs, top_n=3, zero_cooccurrence=-1.0)
    # Only the never-co-occurring D-E pair changes; Z's pairs stay 0.
    np.testing.assert_allclose(limit.per_topic["TC"], [topic0, -1.0 / 3], rtol=1e-14)


def test_pair_in_every_document_scores_one():
    gs = GeneSets.from_dict({"S1": ["A", "B"], "S2": ["A", "B", "C"]})
    beta = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    result = topic_coherence(beta, ["A", "B", "C"], gs, top_n=2)
    # Topic 0 = (A, B): P(A,B) = 1, the 0/0 limit is 1. Topic 1 = (C, B): log(0.5/0.5)/log 2 = 0.
    np.testing.assert_allclose(result.per_topic["TC"], [1.0, 0.0])


def test_npmi_elementwise_rules():
    values = npmi(
        df_a=np.array([0, 2, 2, 4, 1]),
        df_b=np.array([3, 2, 2, 4, 1]),
        co_freq=np.array([0, 0, 2, 4, 1]),
        n_docs=4,
        zero_cooccurrence=-1.0,
    )
    np.testing.assert_allclose(values, [0.0, -1.0, 1.0, 1.0, 1.0])


def slow_coherence(beta, genes, sets: dict[str, list[str]], top_n, zero_cooccurrence):
    """Loops and Python sets, straight from paper Eq. 1-2."""
    docs_of: dict[str, set[str]] = {}
    for name, members in sets.items():
        for gene in members:
            docs_of.setdefault(gene.upper(), set()).add(name)
    n_docs = len(sets)
    per_topic = []
    for row in beta:
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:top_n]
        total = 0.0
        for i, j in itertools.combinations(order, 2):
            di = docs_of.get(genes[i].upper(), set())
            dj = docs_of.get(genes[j].upper(), set())
            if not di or not dj:
                continue
            both = len(di & dj)
            if both == 0:
                total += zero_cooccurrence
            elif both == n_docs:
                total += 1.0
            else:
                p_ij = both / n_docs
                total += math.log(p_ij / (len(di) / n_docs * len(dj) / n_docs)) / -math.log(p_ij)
        per_topic.append(total / (top_n * (top_n - 1) / 2))
    return np.array(per_topic)


def reference_dense_coherence(beta, genes, sets: dict[str, list[str]], top_n):
    """The authors' algorithm (dense document-gene matrix, argpartition), whole symbols."""
    vocab = sorted({g for members in sets.values() for g in members})
    column = {g: i for i, g in enumerate(vocab)}
    dense = np.zeros((len(sets), len(vocab)))
    for row, members in enumerate(sets.values()):
        dense[row, [column[g] for g in members]] = 1
    tran = {i: column[g] for i, g in enumerate(genes) if g in column}
    n_docs = dense.shape[0]
    score = 0.0
    for topic in beta:
        top = np.argpartition(topic, -top_n)[-top_n:]
        s = 0.0
        for n in range(top_n):
            if top[n] in tran:
                flag_n = dense[:, tran[top[n]]] > 0
                p_n = flag_n.sum() / n_docs
                for m in range(n + 1, top_n):
                    if top[m] in tran:
                        flag_m = dense[:, tran[top[m]]] > 0
                        p_m, p_nm = flag_m.sum(), (flag_n * flag_m).sum()
                        if p_n * p_m * p_nm > 0:
                            p_m, p_nm = p_m / n_docs, p_nm / n_docs
                            s += np.log(p_nm / (p_m * p_n)) / -np.log(p_nm)
        score += s * 2 / (top_n * top_n - top_n)
    return score / beta.shape[0]


@pytest.mark.parametrize("zero_cooccurrence", [0.0, -1.0])
def test_matches_slow_implementation_on_real_data(yan_genes, c2, zero_cooccurrence):
    rng = np.random.default_rng(1)
    beta = rng.gamma(0.3, size=(30, len(yan_genes)))
    sets = c2.to_dict()
    expected = slow_coherence(beta, yan_genes, sets, 10, zero_cooccurrence)
    with pytest.warns(UserWarning, match="appear in no gene set"):
        result = topic_coherence(beta, yan_genes, c2, 10, zero_cooccurrence)
    np.testing.assert_allclose(result.per_topic["TC"], expected, rtol=1e-12, atol=1e-15)
    assert np.all(np.abs(result.per_topic["TC"]) <= 1)


def test_matches_reference_algorithm_on_real_data(yan_genes, reactome):
    rng = np.random.default_rng(2)
    beta = rng.gamma(0.3, size=(20, len(yan_genes)))
    # The reference keeps symbols as written; Yan's and Reactome's are upper-case already.
    expected = reference_dense_coherence(beta, list(yan_genes), reactome.to_dict(), 10)
    with pytest.warns(UserWarning):
        result = topic_coherence(beta, yan_genes, reactome, 10)
    assert result.score == pytest.approx(expected, rel=1e-12)


def test_coherent_topics_beat_random_ones(hallmark, rng):
    """Topics made of one Hallmark set each score far above topics of random genes."""
    genes = np.array(sorted(hallmark.genes), dtype=object)
    coherent = np.zeros((10, len(genes)))
    for k, name in enumerate(hallmark.names[:10]):
        members = hallmark[name][:10]
        coherent[k, np.searchsorted(genes, members)] = 1.0 + rng.random(len(members))
    shuffled = coherent[:, rng.permutation(len(genes))]
    good = topic_coherence(coherent, genes, hallmark).score
    bad = topic_coherence(shuffled, genes, hallmark).score
    assert good > 0.25
    assert bad < 0.1
    assert good > bad + 0.2


def test_input_errors(hallmark):
    genes = list(hallmark.genes[:5])
    beta = np.random.default_rng(0).random((3, 5))
    with pytest.raises(InputError, match="top_n = 6 is larger than the number of genes"):
        topic_coherence(beta, genes, hallmark, top_n=6)
    with pytest.raises(InputError, match="zero_cooccurrence must be 0"):
        topic_coherence(beta, genes, hallmark, top_n=3, zero_cooccurrence=0.5)
    with pytest.raises(InputError, match="4 gene names were given"):
        topic_coherence(beta, genes[:4], hallmark, top_n=3)
    bad = beta.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError, match=r"1 NaN .* index \(1, 2\)"):
        topic_coherence(bad, genes, hallmark, top_n=3)


def test_precomputed_top_genes_give_the_same_result(yan_genes, reactome):
    beta = np.random.default_rng(3).random((8, len(yan_genes)))
    top = top_gene_indices(beta, 10)
    with pytest.warns(UserWarning):
        a = topic_coherence(beta, yan_genes, reactome)
    with pytest.warns(UserWarning):
        b = topic_coherence(beta, yan_genes, reactome, top_genes=top)
    np.testing.assert_array_equal(a.per_topic["TC"], b.per_topic["TC"])
