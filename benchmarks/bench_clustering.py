"""Clustering metrics at scale: 50k cells x 100 dimensions, a sweep of 20 resolutions.

    python benchmarks/bench_clustering.py [--cells 50000] [--dims 100] [--types 15]
        [--method louvain] [--knn auto] [--n-jobs N] [--no-reference]

Synthetic cells: ``--types`` cell types whose centres lie in a 10-dimensional latent space,
mapped linearly into ``--dims`` dimensions with isotropic noise (a low intrinsic dimension, as in
PCA or encoder spaces). Prints the wall time of each step of :func:`clustering_scores` (kNN search
reported separately from the connectivities, the 20-resolution sweep and ASW), the total, and the
same sweep done the scanpy way side by side (``sc.pp.neighbors`` + ``sc.tl.leiden(flavor="igraph")``
per resolution, against topiceval's Leiden sweep in one process; scanpy's own Louvain needs the
unmaintained ``louvain`` package), with the ratios.

The sweep runs in one worker process per available core from 10,000 cells on (``n_jobs=None``);
``--n-jobs 1`` times it in one process. Target (issue 6): at most 60 s for the whole sweep on 2
cores.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from topiceval.metrics.clustering import PAPER_RESOLUTIONS, clustering_scores, knn_graph


def synthetic_cells(n_cells: int, n_dims: int, n_types: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent_centres = rng.normal(scale=2.0, size=(n_types, 10))
    types = rng.choice(n_types, size=n_cells, p=rng.dirichlet(np.full(n_types, 2.0)))
    latent = latent_centres[types] + rng.normal(scale=0.8, size=(n_cells, 10))
    mixing = rng.normal(size=(10, n_dims)) / np.sqrt(10)
    cells = latent @ mixing + rng.normal(scale=0.3, size=(n_cells, n_dims))
    return cells, types.astype(str)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=100)
    parser.add_argument("--types", type=int, default=15)
    parser.add_argument("--method", default="louvain", choices=["louvain", "leiden"])
    parser.add_argument("--knn", default="auto", choices=["auto", "exact", "pynndescent"])
    parser.add_argument("--n-jobs", type=int, default=None, help="sweep workers (default: auto)")
    parser.add_argument("--no-reference", action="store_true", help="skip the scanpy side")
    args = parser.parse_args()
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")

    cells, labels = synthetic_cells(args.cells, args.dims, args.types)
    resolutions = PAPER_RESOLUTIONS  # 20 resolutions, 0.0 .. 1.9
    start = time.perf_counter()
    graph = knn_graph(cells, 15, knn_method=args.knn)
    t_graph = time.perf_counter() - start
    start = time.perf_counter()
    result = clustering_scores(cells, labels, resolutions, method=args.method, graph=graph, asw=False,
                               n_jobs=args.n_jobs)
    t_sweep = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from topiceval.metrics.clustering import _silhouette  # the ASW step alone

        codes = np.unique(labels, return_inverse=True)[1]
        _silhouette(cells, codes, 0)
    t_asw = time.perf_counter() - start
    total = t_graph + t_sweep + t_asw
    print(f"{args.cells} cells x {args.dims} dims, {len(resolutions)} resolutions, {args.method}")
    print(f"  kNN search ({graph.knn_method}):  {graph.seconds['knn']:7.2f} s")
    print(f"  connectivities:        {graph.seconds['connectivities']:7.2f} s")
    print(f"  sweep ({len(resolutions)} x {args.method}): {t_sweep:7.2f} s")
    print(f"  ASW:                   {t_asw:7.2f} s")
    print(f"  total:                 {total:7.2f} s   (target <= 60 s on 2 cores)")
    print(f"  ARI {result['ARI']:.3f} at resolution {result.info['best_resolution']}, "
          f"label-free ARI {result['ARI_label_free']:.3f} at {result.info['label_free_resolution']}")

    if args.no_reference:
        return
    try:
        import anndata as ad
        import scanpy as sc
    except ImportError:
        print("scanpy not installed: no reference timing")
        return
    adata = ad.AnnData(cells)
    start = time.perf_counter()
    sc.pp.neighbors(adata, use_rep="X", transformer="sklearn")  # exact, like topiceval
    t_ref_graph = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for resolution in resolutions:
            sc.tl.leiden(adata, resolution=resolution, flavor="igraph", n_iterations=-1,
                         directed=False, random_state=0)
    t_ref_sweep = time.perf_counter() - start
    # the same algorithm on our side (scanpy's Louvain needs the unmaintained louvain package)
    start = time.perf_counter()
    clustering_scores(cells, labels, resolutions, method="leiden", graph=graph, asw=False, n_jobs=1)
    t_leiden = time.perf_counter() - start
    print("scanpy side by side (exact neighbors; 20 x leiden, igraph flavor, one process):")
    print(f"  sc.pp.neighbors:       {t_ref_graph:7.2f} s   topiceval kNN + connectivities "
          f"{t_graph:7.2f} s   ratio {t_graph / t_ref_graph:.2f}")
    print(f"  20 x sc.tl.leiden:     {t_ref_sweep:7.2f} s   topiceval leiden sweep (n_jobs=1) "
          f"{t_leiden:7.2f} s   ratio {t_leiden / t_ref_sweep:.2f}")

if __name__ == "__main__":
    main()
