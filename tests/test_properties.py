"""Property tests: bounds and invariances of TC, TD and IP (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from topiceval.gene_sets import GeneSets
from topiceval.metrics import interpretation_purity, npmi, topic_coherence, topic_diversity

N_GENES = 12
GENES = np.array([f"G{i}" for i in range(N_GENES)], dtype=object)

gene_sets = st.lists(
    st.lists(st.sampled_from(list(GENES) + ["X1", "X2"]), min_size=1, max_size=8),
    min_size=1,
    max_size=12,
).map(lambda sets: GeneSets.from_dict({f"S{i}": s for i, s in enumerate(sets)}))

# Distinct weights per row, so that the top genes do not depend on tie rules when permuting.
topic_gene = st.integers(2, 6).flatmap(
    lambda k: st.lists(st.permutations(range(N_GENES)), min_size=k, max_size=k).map(
        lambda rows: np.array(rows, dtype=float)
    )
)

relaxed = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(gene_sets, topic_gene, st.sampled_from([0.0, -1.0]), st.integers(2, 6))
def test_tc_bounds_and_topic_order_invariance(gs, beta, zero, top_n):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = topic_coherence(beta, GENES, gs, top_n, zero)
        order = np.random.default_rng(0).permutation(beta.shape[0])
        permuted = topic_coherence(beta[order], GENES, gs, top_n, zero)
        genes_order = np.random.default_rng(1).permutation(N_GENES)
        columns = topic_coherence(beta[:, genes_order], GENES[genes_order], gs, top_n, zero)
    values = result.per_topic["TC"].to_numpy()
    assert np.all((values >= -1) & (values <= 1))
    np.testing.assert_allclose(permuted.per_topic["TC"], values[order], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(columns.per_topic["TC"], values, rtol=1e-12, atol=1e-15)
    assert np.isclose(permuted.score, result.score, rtol=1e-12, atol=1e-15)


@relaxed
@given(
    st.integers(1, 50).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.integers(0, n), st.integers(0, n), st.just(n))
    )
)
def test_npmi_in_bounds(counts):
    a, b, both, n = counts
    both = min(both, a, b)
    for zero in (0.0, -1.0):
        value = npmi(np.array([a]), np.array([b]), np.array([both]), n, zero)[0]
        assert -1.0 <= value <= 1.0


@relaxed
@given(topic_gene, st.integers(2, 6), st.sampled_from(["unique", "exclusive"]))
def test_td_bounds_and_invariance(beta, top_n, method):
    result = topic_diversity(beta, top_n, method)
    low = 0.0 if method == "exclusive" else 1.0 / beta.shape[0]
    assert low - 1e-12 <= result.score <= 1.0
    assert 0.0 < topic_diversity(beta, top_n, "unique").score <= 1.0
    order = np.random.default_rng(0).permutation(beta.shape[0])
    assert topic_diversity(beta[order], top_n, method).score == result.score


@relaxed
@given(
    arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(2, 8)), elements=st.floats(0, 1)),
    st.data(),
)
def test_ip_bounds_and_relabelling_invariance(theta, data):
    n = theta.shape[0]
    labels = np.array(data.draw(st.lists(st.sampled_from("abcd"), min_size=n, max_size=n)))
    result = interpretation_purity(theta, labels)
    assert 0.0 < result.score <= 1.0
    renamed = np.array([{"a": "z", "b": "y", "c": "x", "d": "w"}[v] for v in labels])
    assert interpretation_purity(theta, renamed).score == result.score
    # Reordering topics relabels the argmax partition without changing it (one-hot rows have no
    # ties, so the tie rule plays no part).
    one_hot = np.eye(theta.shape[1])[theta.argmax(axis=1)]
    order = np.random.default_rng(0).permutation(theta.shape[1])
    assert interpretation_purity(one_hot[:, order], labels).score == result.score
