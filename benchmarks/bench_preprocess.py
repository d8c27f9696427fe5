"""Preprocessing at 50k cells: topiceval.datasets.preprocess vs the same steps in scanpy.

    python benchmarks/bench_preprocess.py [--cells 50000] [--umis 2500] [--top 5000] [--no-scanpy]

The data are real counts tiled to 50k cells: cells of Pollen et al. 2014 (``load_dataset("pollen")``,
23794 genes) drawn at random and thinned to a droplet-like depth (Poisson thinning to a log-normal
library size around ``--umis``), giving a sparse CSR matrix of about 5 % density; without the shared
data folder, the shipped default dataset (5000 genes) is tiled instead.

Each implementation runs in a fresh subprocess that loads the matrix, warms up on 500 cells (so that
numba compilation is not timed), then runs once: drop empty cells and genes, keep the counts, normalise
to 1e4, log1p, seurat HVG (top 5000) and subset. Printed per implementation: wall time, peak memory
traced by tracemalloc (numpy buffers; not numba's) and the rise of the peak resident set size over the
loaded input (``VmHWM`` - ``VmRSS`` before the run, from /proc/self/status), next to the size of the input and of the matrix if it were dense. The
ratios are topiceval / scanpy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def make_counts(n_cells: int, umis: float, seed: int = 0) -> tuple[sp.csr_matrix, list[str]]:
    """Real cells tiled and Poisson-thinned to droplet depth (float32 CSR)."""
    from topiceval.datasets import load_dataset, load_default
    from topiceval.errors import InputError

    try:
        source = load_dataset("pollen")
    except InputError:  # no shared data folder: the shipped subset
        source = load_default()
    base = sp.csr_matrix(source.X, dtype=np.float32)
    genes = [str(g) for g in source.var_names]
    rng = np.random.default_rng(seed)
    totals = np.asarray(base.sum(axis=1)).ravel()
    blocks = []
    for start in range(0, n_cells, 5000):
        size = min(5000, n_cells - start)
        rows = rng.integers(0, base.shape[0], size)
        block = base[rows]
        target = rng.lognormal(np.log(umis), 0.5, size)
        scale = np.repeat(np.minimum(1.0, target / totals[rows]), np.diff(block.indptr))
        block.data = rng.poisson(block.data * scale).astype(np.float32)
        block.eliminate_zeros()
        blocks.append(block)
    return sp.vstack(blocks, format="csr"), genes


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status in MB (VmRSS now, VmHWM the peak of this process image;
    unlike ru_maxrss, VmHWM does not inherit the parent's peak across fork + exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1e3
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_one(which: str, path: str, top: int) -> dict:
    """Run inside a subprocess: load, warm up, time one preprocessing."""
    loaded = np.load(path)
    matrix = sp.csr_matrix((loaded["data"], loaded["indices"], loaded["indptr"]), shape=tuple(loaded["shape"]))
    genes = [str(g) for g in loaded["genes"]]

    def make(m):
        return _adata(m, genes)

    warnings.simplefilter("ignore")
    if which == "topiceval":
        from topiceval.datasets import preprocess

        def step(adata):
            return preprocess(adata, n_top_genes=top)
    else:
        import scanpy as sc

        def step(adata):
            adata.layers["counts"] = adata.X.copy()
            sc.pp.filter_cells(adata, min_counts=1)
            sc.pp.filter_genes(adata, min_cells=1)
            sc.pp.normalize_total(adata, target_sum=1e4)
            sc.pp.log1p(adata)
            sc.pp.highly_variable_genes(adata, n_top_genes=top, subset=True)
            return adata

    step(make(matrix[:500].copy()))  # warm-up (numba compilation, imports)
    adata = make(matrix)
    del matrix, loaded
    rss_before = _status_mb("VmRSS")
    tracemalloc.start()
    start = time.perf_counter()
    out = step(adata)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = _status_mb("VmHWM")
    return {
        "impl": which,
        "seconds": seconds,
        "traced_peak_mb": traced_peak / 1e6,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss,
        "rss_rise_mb": peak_rss - rss_before,
        "out_shape": list(out.shape),
        "x_sparse": bool(sp.issparse(out.X)),
        "genes": [str(g) for g in out.var_names],
    }


def _adata(matrix, genes):
    import anndata
    import pandas as pd

    return anndata.AnnData(X=matrix, var=pd.DataFrame(index=pd.Index(genes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--umis", type=float, default=2500.0)
    parser.add_argument("--top", type=int, default=5000)
    parser.add_argument("--no-scanpy", action="store_true")
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(run_one(args._child[0], args._child[1], args.top)))
        return

    start = time.perf_counter()
    matrix, genes = make_counts(args.cells, args.umis)
    n_cells, n_genes = matrix.shape
    made = time.perf_counter() - start
    input_mb = (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 1e6
    print(
        f"data: {n_cells} cells x {n_genes} genes, {matrix.nnz / (n_cells * n_genes):.1%} non-zero, "
        f"sparse input {input_mb:.0f} MB, dense float32 would be {n_cells * n_genes * 4 / 1e6:.0f} MB "
        f"(made in {made:.1f} s)"
    )
    impls = ["topiceval"]
    if not args.no_scanpy:
        try:
            import scanpy  # noqa: F401

            impls.append("scanpy")
        except ImportError:
            print("scanpy is not installed: topiceval only")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "counts.npz")
        np.savez(path, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr, shape=np.array(matrix.shape), genes=np.array(genes))
        del matrix
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        for impl in impls:
            proc = subprocess.run(
                [sys.executable, __file__, "--top", str(args.top), "--_child", impl, path],
                capture_output=True, text=True, env=env, check=False,
            )
            if proc.returncode != 0:
                print(f"{impl} failed:\n{proc.stderr[-3000:]}")
                continue
            results[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    for impl, r in results.items():
        print(
            f"{impl:>9}: {r['seconds']:6.2f} s, traced peak {r['traced_peak_mb']:7.0f} MB, peak RSS "
            f"{r['peak_rss_mb']:7.0f} MB (+{r['rss_rise_mb']:.0f} MB over the loaded input), "
            f"out {r['out_shape'][0]} x {r['out_shape'][1]}, X sparse: {r['x_sparse']}"
        )
    if len(results) == 2:
        ours, ref = results["topiceval"], results["scanpy"]
        print(
            f"ratio topiceval/scanpy: time {ours['seconds'] / ref['seconds']:.2f}, traced peak "
            f"{ours['traced_peak_mb'] / max(ref['traced_peak_mb'], 1e-9):.2f}, RSS rise "
            f"{ours['rss_rise_mb'] / max(ref['rss_rise_mb'], 1e-9):.2f}; same genes: {ours['genes'] == ref['genes']}"
        )


if __name__ == "__main__":
    main()
