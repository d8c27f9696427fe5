"""pytest-benchmark: the paper's preprocessing of 10k real-derived droplet-depth cells.

    pytest benchmarks/ --benchmark-only

``bench_preprocess.py`` runs the 50k-cell comparison with scanpy and reports peak memory.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from bench_preprocess import _adata, make_counts  # noqa: E402

from topiceval.datasets import preprocess  # noqa: E402


@pytest.fixture(scope="module")
def cells():
    return make_counts(10_000, 2500.0)


def test_preprocess_10k_cells(benchmark, cells):
    matrix, genes = cells
    adata = _adata(matrix, genes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = benchmark(preprocess, adata, n_top_genes=5000)
    assert out.shape == (10_000, 5000) and sp.issparse(out.X)
