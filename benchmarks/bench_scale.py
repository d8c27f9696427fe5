"""Cost curves at atlas scale: wall time and peak memory from 10k to 1M cells.

    python benchmarks/bench_scale.py [--sizes 10000,100000,300000,1000000] [--topics 100] [--backend auto]
        [--types 12] [--tasks score,scanpy,sce2tm] [--sce2tm-sizes 10000,100000]
        [--scanpy-max 1000000] [--timeout 1800] [--out bench_scale_out]
    python benchmarks/bench_scale.py --asw-check 100000 [--topics 100] [--seeds 0,1,2]

Tasks, each run in a fresh Python process per size (so that numba compilation, imports and the
sweep's worker processes are part of the cost, as for a user), while this process samples the
resident memory of that process and all its children every 0.2 s (peak RSS of the process tree):

* ``score``: IP + clustering (kNN graph, connectivities, the paper's 20-resolution Louvain sweep,
  ARI / NMI, ASW on its stratified subsample) through ``topiceval.evaluate(..., metrics=["ip"])``, the cell-topic matrix memory-mapped from a ``.npy``
  (:func:`topiceval.io.read_cell_matrix`); the clustering through the function that ``evaluate``
  calls (``clustering_scores`` with its defaults), whose info holds the seconds of each step. The
  steps column splits the time: ``read`` (mapping the
  input, loading the labels), ``ip``, and the clustering's ``knn`` search, ``connectivities``,
  ``recall`` check (approximate search only), Louvain ``sweep`` (all resolutions, in parallel),
  ``scores`` (ARI / NMI / AMI per resolution), ``asw`` and ``other`` (input checks). ``--backend``
  picks the Louvain implementation (``cluster_backend``).
* ``scanpy``: the scanpy way side by side at the same sizes: ``sc.pp.neighbors(use_rep=...,
  n_neighbors=15)`` then one clustering per resolution of the same sweep. scanpy's own Louvain
  (``sc.tl.louvain``) needs the ``louvain`` package, which no longer installs (it needs
  ``pkg_resources`` and igraph < 0.12), so the scanpy side runs ``sc.tl.leiden(flavor="igraph",
  n_iterations=2)``, scanpy's recommended replacement; the comparison is of the pipeline costs.
* ``sce2tm``: one scE2TM epoch (``epochs=1``, plus the set-up: input checks and both mutual-kNN
  neighbour sets, approximate above 20,000 cells) on a sparse log1p matrix of 2,000 genes read
  from a backed h5ad, at ``--sce2tm-sizes``; reports set-up and epoch seconds separately.

Enrichment (ORA / GSEA, TC, TD, TQ) reads only the topic-gene matrix: its cost does not depend
on the number of cells, so it is not on the curves.

Data: a seeded generator (``numpy.random.default_rng(0)``): ``--types`` cell types of random
sizes, cell ``i`` of type ``t`` draws its topic proportions from Dirichlet(0.1 everywhere, 3 on
topic ``t``); the labels are the types. Prints a table (seconds, peak GiB, growth exponent between
consecutive sizes: ``log(t2 / t1) / log(n2 / n1)``; 1 is linear, n log n reads as ~1.1), and
writes ``scale.json`` and a log-log plot ``scale.png`` under ``--out``.

``--asw-check N``: ASW on the seeded stratified subsample (the default ``cluster_asw_max_cells``
= 10,000 cells, for each of ``--seeds``) against the full silhouette of all ``N`` cells (O(N^2),
blockwise), on the same data.

Targets (issue 19, 2 cores, 24 GB): 1M cells x K = 100 scored (IP + ARI / NMI over the sweep) in
<= 10 min and <= 8 GB; 100k cells in <= 60 s. Timings on a shared machine are noisy: compare the
rows measured in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


# --------------------------------------------------------------------------- data
def synthetic_cell_topic(n_cells: int, n_topics: int, n_types: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n_cells, n_topics)`` float64 proportions and ``n_cells`` string labels (see the docstring)."""
    rng = np.random.default_rng(seed)
    types = rng.choice(n_types, size=n_cells, p=rng.dirichlet(np.full(n_types, 4.0)))
    alpha = np.full((n_types, n_topics), 0.1)
    alpha[np.arange(n_types), np.arange(n_types) % n_topics] = 3.0
    theta = np.empty((n_cells, n_topics))
    step = 100_000
    for start in range(0, n_cells, step):  # gamma draws in blocks keep the temporaries small
        block = types[start:start + step]
        gamma = rng.standard_gamma(alpha[block])
        theta[start:start + step] = gamma / gamma.sum(1, keepdims=True)
    labels = np.array([f"type{t}" for t in range(n_types)], dtype=object)[types]
    return theta, labels


def synthetic_expression(n_cells: int, n_genes: int, n_types: int, seed: int = 0):  # noqa: ANN201
    """A sparse log1p expression AnnData (about 10% non-zero) with a 64-d ``obsm["X_scGPT"]``."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    types = rng.choice(n_types, size=n_cells)
    profile = rng.gamma(0.3, size=(n_types, n_genes))
    profile /= profile.sum(1, keepdims=True)
    nnz_per_cell = 200
    rows, cols, vals = [], [], []
    for start in range(0, n_cells, 50_000):
        block = types[start:start + 50_000]
        genes = np.stack([rng.choice(n_genes, nnz_per_cell, p=profile[t]) for t in range(n_types)])
        picked = genes[block][:, rng.permutation(nnz_per_cell)]
        rows.append(np.repeat(np.arange(start, start + block.size), nnz_per_cell))
        cols.append(picked.ravel())
        vals.append(rng.poisson(2.0, picked.size).astype(np.float32) + 1)
    x = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_cells, n_genes), dtype=np.float32)
    x.sum_duplicates()
    x.data = np.log1p(x.data)
    centres = rng.normal(size=(n_types, 64)).astype(np.float32)
    emb = centres[types] + rng.normal(scale=0.5, size=(n_cells, 64)).astype(np.float32)
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"type{t}" for t in types])},
                       index=[f"c{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    adata = anndata.AnnData(x, obs=obs, var=var)
    adata.obsm["X_scGPT"] = emb
    return adata


# --------------------------------------------------------------------------- workers
def _worker_score(path: str, labels_path: str, n_jobs: int | None, backend: str = "auto") -> dict:
    import topiceval as te
    from topiceval.io import read_cell_matrix
    from topiceval.metrics.clustering import clustering_scores
    from topiceval.protocol import TopicOutputs

    start = time.perf_counter()
    theta = read_cell_matrix(path)
    labels = np.load(labels_path, allow_pickle=False).astype(object)
    outputs = TopicOutputs(topic_gene=None, gene_names=None, cell_topic=theta, name="synthetic")
    t_read = time.perf_counter() - start
    t0 = time.perf_counter()
    ip = te.evaluate(outputs, labels=labels, metrics=["ip"])
    t_ip = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the function te.evaluate(metrics=["clustering"]) calls, with its defaults: its info has the
    # seconds of every step
    result = clustering_scores(theta, labels, n_jobs=n_jobs, backend=backend)
    t_clustering = time.perf_counter() - t0
    seconds = time.perf_counter() - start
    info = result.info
    scores = {k: float(v) for k, v in [*ip.scores.items(), *result.scores.items()]}
    # per step: input reading, IP, and the clustering's own split (kNN search, connectivities,
    # recall check, Louvain sweep, ARI / NMI / AMI of every resolution, ASW); "other" is the rest
    # of the clustering call (input checks, labels, the registry)
    split = info.get("seconds", {})
    steps = {"read": t_read, "ip": t_ip, **{k: split[k] for k in ("knn", "connectivities", "recall", "sweep",
                                                                    "scores", "asw") if k in split}}
    steps["other"] = t_clustering - sum(split.get(k, 0.0) for k in ("knn", "connectivities", "recall",
                                                                     "clustering", "asw"))
    return {"seconds": seconds, "knn_method": info.get("knn_method"), "knn_recall": info.get("knn_recall"),
            "backend": info.get("backend"), "scores": scores, "still_mapped": isinstance(theta, np.memmap),
            "steps": steps}


def _worker_scanpy(path: str, labels_path: str) -> dict:
    import anndata
    import scanpy as sc
    import scipy.sparse as sp

    from topiceval.metrics.clustering import PAPER_RESOLUTIONS

    if not hasattr(sp.csr_array, "getnnz"):
        # scanpy's neighbours above 8,192 cells call csr_array.getnnz(axis=1), which newer scipy
        # no longer has; the same count under its private name, so that scanpy runs unchanged
        sp.csr_array.getnnz = lambda self, axis=None: self._getnnz(axis=axis)

    start = time.perf_counter()
    theta = np.load(path, mmap_mode="r")
    adata = anndata.AnnData(obs={"i": np.arange(theta.shape[0])})
    adata.obsm["X_topic"] = np.asarray(theta)
    t0 = time.perf_counter()
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_topic", random_state=0)
    t_neighbours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in PAPER_RESOLUTIONS:
        sc.tl.leiden(adata, resolution=r, flavor="igraph", n_iterations=2, random_state=0, key_added="leiden")
    t_sweep = time.perf_counter() - t0
    return {"seconds": time.perf_counter() - start, "steps": {"neighbors": t_neighbours, "sweep": t_sweep}}


def _worker_sce2tm(h5ad: str) -> dict:
    import anndata

    from models.sce2tm import SCE2TM

    adata = anndata.read_h5ad(h5ad, backed="r")
    start = time.perf_counter()
    model = SCE2TM(n_topics=100, epochs=1, progress=False, n_threads=int(os.environ.get("OMP_NUM_THREADS", "2")))
    model.fit(adata, embedding_key="X_scGPT", key_added=None)
    return {"seconds": time.perf_counter() - start, "steps": {
        "setup": model.info["setup_seconds"], "epoch": model.info["seconds_per_epoch"]},
        "input_sparse": model.info["input_sparse"]}


# --------------------------------------------------------------------------- driver
def _tree_rss(proc) -> int:  # noqa: ANN001
    import psutil

    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def run_worker(args: list[str], timeout: float) -> dict:
    """Run this script as ``--worker ...`` in a fresh process; its JSON result plus peak tree RSS."""
    import psutil

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("MKL_NUM_THREADS", env["OMP_NUM_THREADS"])
    env.setdefault("NUMBA_NUM_THREADS", env["OMP_NUM_THREADS"])
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, str(HERE), "--worker", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    proc = psutil.Process(child.pid)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc))
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in proc.children(recursive=True):
            p.kill()
        child.kill()
        out, err = child.communicate()
        done.set()
        return {"error": f"timed out after {timeout:.0f} s", "wall": time.perf_counter() - start,
                "peak_gib": peak[0] / 2**30}
    done.set()
    thread.join()
    wall = time.perf_counter() - start
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return {"error": (err or out)[-800:], "wall": wall, "peak_gib": peak[0] / 2**30}
    result = json.loads(lines[-1])
    result.update(wall=wall, peak_gib=peak[0] / 2**30)
    return result


def _exponents(sizes: list[int], seconds: list[float]) -> list[str]:
    out = ["-"] if sizes else []
    for i in range(1, len(sizes)):
        a, b = seconds[i - 1], seconds[i]
        out.append(f"{math.log(b / a) / math.log(sizes[i] / sizes[i - 1]):.2f}" if a and b else "-")
    return out


def asw_check(n_cells: int, n_topics: int, n_types: int, seeds: list[int]) -> None:
    from sklearn.metrics import silhouette_samples

    from topiceval.metrics.clustering import ASW_MAX_CELLS, _silhouette

    theta, labels = synthetic_cell_topic(n_cells, n_topics, n_types)
    codes = np.unique(labels, return_inverse=True)[1]
    rows = np.arange(n_cells)
    start = time.perf_counter()
    # full silhouette, blockwise: s_i needs every distance of cell i, chunked by scikit-learn
    full = float(np.mean(silhouette_samples(theta, codes, metric="euclidean")))
    t_full = time.perf_counter() - start
    print(f"ASW, {n_cells} cells x {n_topics} topics, {n_types} types: full {full:.5f} ({t_full:.0f} s)")
    errors = []
    for seed in seeds:
        start = time.perf_counter()
        value, info = _silhouette(theta, rows, codes, seed, ASW_MAX_CELLS)
        errors.append(value - full)
        print(f"  seed {seed}: subsample of {info['n_cells']} cells {value:.5f}  error {value - full:+.5f} "
              f"({time.perf_counter() - start:.1f} s)")
    print(f"  max |error| {max(abs(e) for e in errors):.5f} over {len(seeds)} seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000,1000000")
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--types", type=int, default=12)
    parser.add_argument("--tasks", default="score,scanpy,sce2tm")
    parser.add_argument("--sce2tm-sizes", default="10000,100000")
    parser.add_argument("--scanpy-max", type=int, default=1_000_000, help="largest size for the scanpy side")
    parser.add_argument("--n-jobs", type=int, default=None, help="sweep workers (default: auto)")
    parser.add_argument("--backend", default="auto", help="Louvain implementation: auto, igraph or numba")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--out", default="bench_scale_out")
    parser.add_argument("--asw-check", type=int, default=None, metavar="N")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        task, *rest = args.worker
        if task == "score":
            result = _worker_score(rest[0], rest[1], None if rest[2] == "auto" else int(rest[2]), rest[3])
        elif task == "scanpy":
            result = _worker_scanpy(rest[0], rest[1])
        else:
            result = _worker_sce2tm(rest[0])
        print(json.dumps(result, default=float))
        return
    if args.asw_check:
        asw_check(args.asw_check, args.topics, args.types, [int(s) for s in args.seeds.split(",")])
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = args.tasks.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (2 used)')}, cpus={os.cpu_count()}; "
          f"K = {args.topics}, {args.types} types")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        for n in sizes:
            theta_path, labels_path = Path(tmp, f"theta_{n}.npy"), Path(tmp, f"labels_{n}.npy")
            if {"score", "scanpy"} & set(tasks):
                theta, labels = synthetic_cell_topic(n, args.topics, args.types)
                np.save(theta_path, theta)
                np.save(labels_path, labels.astype(str))
                del theta, labels
            if "score" in tasks:
                r = run_worker(["score", str(theta_path), str(labels_path), str(args.n_jobs or "auto"),
                                args.backend], args.timeout)
                rows.append({"task": "topiceval IP + clustering", "n": n, **r})
                print(json.dumps(rows[-1], default=float), flush=True)
            if "scanpy" in tasks and n <= args.scanpy_max:
                r = run_worker(["scanpy", str(theta_path), str(labels_path)], args.timeout)
                rows.append({"task": "scanpy neighbors + leiden sweep", "n": n, **r})
                print(json.dumps(rows[-1], default=float), flush=True)
            theta_path.unlink(missing_ok=True)
        if "sce2tm" in tasks:
            for n in [int(s) for s in args.sce2tm_sizes.split(",")]:
                h5ad = Path(tmp, f"expr_{n}.h5ad")
                synthetic_expression(n, 2000, args.types).write_h5ad(h5ad)
                r = run_worker(["sce2tm", str(h5ad)], args.timeout)
                rows.append({"task": "scE2TM 1 epoch (+ set-up)", "n": n, **r})
                print(json.dumps(rows[-1], default=float), flush=True)
                h5ad.unlink()
    (out / "scale.json").write_text(json.dumps(rows, indent=1, default=float))

    print(f"\n{'task':34s} {'cells':>9s} {'seconds':>9s} {'peak GiB':>9s} {'growth':>7s}  steps")
    by_task: dict[str, list[dict]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    for task, items in by_task.items():
        ok = [r for r in items if "error" not in r]
        growth = dict(zip([r["n"] for r in ok], _exponents([r["n"] for r in ok], [r["seconds"] for r in ok]), strict=True))
        for r in items:
            steps = ", ".join(f"{k} {v:.1f}" for k, v in (r.get("steps") or {}).items())
            secs = f"{r['seconds']:9.1f}" if "seconds" in r else f"{'-':>9s}"
            extra = f" [{r['knn_method']} kNN, {r['backend']} Louvain]" if r.get("backend") else ""
            print(f"{task:34s} {r['n']:9d} {secs} {r['peak_gib']:9.2f} {growth.get(r['n'], '-'):>7s}  "
                  f"{(steps + extra) or r.get('error', '')[:120]}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
        for task, items in by_task.items():
            ok = [r for r in items if "error" not in r]
            if ok:
                ax_t.loglog([r["n"] for r in ok], [r["seconds"] for r in ok], "o-", label=task)
                ax_m.loglog([r["n"] for r in ok], [r["peak_gib"] for r in ok], "o-", label=task)
        ax_t.set(xlabel="cells", ylabel="wall seconds", title="time")
        ax_m.set(xlabel="cells", ylabel="peak RSS (GiB, process tree)", title="memory")
        ax_t.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "scale.png", dpi=120)
        print(f"plot: {out / 'scale.png'}")
    except ImportError:
        print("matplotlib not installed: no plot")


if __name__ == "__main__":
    main()
