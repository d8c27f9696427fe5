"""pytest-benchmark: ORA and native GSEA for K = 100 topics, V = 5000 genes, MSigDB C2 v7.1.

    pytest benchmarks/test_bench_enrichment.py --benchmark-only

Targets (issue 5) on 2 cores: ORA at most 0.5 s; native GSEA (1000 permutations, 2 threads) at
most 120 s. ``bench_ora.py`` and ``bench_gsea.py`` print the ratios against gseapy and blitzgsea.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bench_ora import load_c2, topic_matrix, vocabulary  # noqa: E402

from topiceval.metrics import prerank_gsea, topic_ora  # noqa: E402


@pytest.fixture(scope="module")
def data():
    c2 = load_c2()
    genes = vocabulary(5000)
    return topic_matrix(genes, c2, 100), genes, c2


def test_ora_k100_c2(benchmark, data):
    beta, genes, c2 = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = benchmark(topic_ora, beta, genes, c2, 10)
    assert result["ORA_N"] > 0


def test_gsea_native_k100_c2(benchmark, data):
    beta, genes, c2 = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = benchmark.pedantic(prerank_gsea, args=(beta, genes, c2),
                                   kwargs={"n_perm": 1000, "seed": 0, "n_jobs": 2, "progress": False},
                                   rounds=1, iterations=1)
    assert table["significant"].any()
