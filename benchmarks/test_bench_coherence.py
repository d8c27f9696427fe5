"""pytest-benchmark: TC for K = 100, top 10, on a whole-MSigDB-sized synthetic collection.

    pytest benchmarks/ --benchmark-only

Target (issue 3): at most 0.5 s and 200 MB peak on 2 cores; ``bench_coherence.py`` prints the dense
comparison and the peak memory.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bench_coherence import synthetic_collection, synthetic_topics  # noqa: E402

from topiceval.metrics import topic_coherence  # noqa: E402


@pytest.fixture(scope="module")
def msigdb_sized():
    gene_sets = synthetic_collection(35_000, 45_000)
    beta, genes = synthetic_topics(gene_sets, 100)
    return gene_sets, beta, genes


def test_tc_msigdb_scale(benchmark, msigdb_sized):
    gene_sets, beta, genes = msigdb_sized
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = benchmark(topic_coherence, beta, genes, gene_sets, 10)
    assert -1 <= result.score <= 1
