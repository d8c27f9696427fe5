"""TC at whole-MSigDB scale: sparse (topiceval) vs a dense sets x genes matrix (reference style).

    python benchmarks/bench_coherence.py [--sets 35000] [--genes 45000] [--topics 100] [--no-dense]

A synthetic collection with MSigDB's shape and density (35k sets x 45k genes; set sizes
log-normal around 45 with a long tail, mean about 75; gene popularity skewed), K = 100 topics,
top 10 genes. Prints wall time (best of 5) and peak traced memory (tracemalloc, which sees numpy's
buffers) for topiceval's ``topic_coherence`` and for the dense algorithm, and their ratios.

The reference code allocates the dense matrix as float64 (35k x 45k x 8 B = 12.6 GB); here the dense
side uses one byte per entry (1.6 GB) so that it fits a 24 GB machine, which flatters it.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings

import numpy as np
import scipy.sparse as sp

from topiceval.gene_sets import GeneSets
from topiceval.metrics import npmi, top_gene_indices, topic_coherence


def synthetic_collection(n_sets: int, n_genes: int, seed: int = 0) -> GeneSets:
    rng = np.random.default_rng(seed)
    sizes = np.clip(rng.lognormal(np.log(45), 1.0, n_sets), 5, 2000).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_genes + 1) ** 0.6
    popularity /= popularity.sum()
    rows = np.repeat(np.arange(n_sets), sizes)
    cols = rng.choice(n_genes, size=sizes.sum(), p=popularity)
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n_sets, n_genes))
    genes = [f"GENE{i}" for i in range(n_genes)]
    return GeneSets([f"SET{i}" for i in range(n_sets)], genes, matrix, source="synthetic")


def synthetic_topics(gene_sets: GeneSets, n_topics: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    beta = rng.gamma(0.2, size=(n_topics, gene_sets.n_genes))
    return beta, np.asarray(gene_sets.genes, dtype=object)


def dense_coherence(dense: np.ndarray, beta: np.ndarray, top_n: int = 10) -> float:
    """The reference algorithm on a dense documents x genes matrix, vectorised per topic."""
    n_docs = dense.shape[0]
    top = top_gene_indices(beta, top_n)
    first, second = np.triu_indices(top_n, k=1)
    scores = []
    for genes in top:
        columns = dense[:, genes].astype(np.float64)
        df = columns.sum(axis=0)
        co = columns.T @ columns
        scores.append(npmi(df[first], df[second], co[first, second], n_docs).mean())
    return float(np.mean(scores))


def measure(fn, repeats: int = 5) -> tuple[float, float, object]:
    """Best wall time over ``repeats`` and peak traced memory (MB) of one call."""
    gc.collect()
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=35_000)
    parser.add_argument("--genes", type=int, default=45_000)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--no-dense", action="store_true", help="skip the dense comparison")
    args = parser.parse_args()

    gene_sets = synthetic_collection(args.sets, args.genes)
    beta, genes = synthetic_topics(gene_sets, args.topics)
    density = gene_sets.membership.nnz / (gene_sets.n_sets * gene_sets.n_genes)
    print(f"collection: {gene_sets.n_sets} sets x {gene_sets.n_genes} genes, "
          f"{gene_sets.membership.nnz} memberships ({density:.3%} dense); K = {args.topics}, top 10")

    def sparse_tc() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return topic_coherence(beta, genes, gene_sets, 10).score

    t_sparse, m_sparse, tc_sparse = measure(sparse_tc)
    print(f"topiceval (sparse):  {t_sparse * 1000:8.1f} ms  peak {m_sparse:8.1f} MB  TC = {tc_sparse:.6f}")
    if args.no_dense:
        return

    def dense_tc() -> float:
        dense = gene_sets.membership.toarray().view(np.uint8)  # 1 byte per entry
        return dense_coherence(dense, beta)

    t_dense, m_dense, tc_dense = measure(dense_tc, repeats=1)
    print(f"dense (uint8):       {t_dense * 1000:8.1f} ms  peak {m_dense:8.1f} MB  TC = {tc_dense:.6f}")
    print(f"ratio dense/sparse:  time {t_dense / t_sparse:6.1f}x  memory {m_dense / m_sparse:6.1f}x")
    print(f"same TC: {np.isclose(tc_sparse, tc_dense, rtol=1e-12)}")


if __name__ == "__main__":
    main()
