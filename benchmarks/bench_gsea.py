"""Pre-ranked GSEA, K = 100 topics, the 4656 Yan genes, MSigDB C2 v7.1, 1000 permutations.

    python benchmarks/bench_gsea.py [--topics 100] [--reference-topics 2] [--n-perm 1000]
        [--n-jobs 2] [--repeats 3] [--skip gseapy,decoupler,...] [--no-score] [--no-reference]

Data: the genes of the Yan et al. dataset (header of ../shared/data/datasets/yan/yan_HIGHPRE.csv)
and a seeded K x 4656 softmax topic-gene matrix with planted C2 signal (``bench_ora.topic_matrix``).

Measured in one run, side by side:

* topiceval native (compiled kernels, ``n_jobs`` threads) on all K topics, each in a fresh process:
  cold (the JIT cache of the kernels cleared first: compile + run), from the on-disk JIT cache, and
  warm (median of ``--repeats`` calls after the first); the peak resident memory of that process;
* the numpy reference engine (topiceval 0.1's native engine; ``--no-reference`` skips it);
* the peers on ``--reference-topics`` topics, EXTRAPOLATED per topic to K (the output says so):
  pyfgsea ``run_gsea`` (its defaults, and ``nperm_simple = n_perm``), decoupler ``dc.mt.gsea``
  (all timed topics in one call, ``times = n_perm``, seed 1: decoupler treats seed 0 as "no
  permutation"), blitzgsea and gseapy ``prerank`` (through topiceval's engines);
* ``topiceval score`` with TC, TD, TQ, ORA and GSEA end to end in a fresh process (start-up
  included), cold (JIT cache cleared) and warm (JIT cache on disk).

Ratios are peer time / native warm time. Targets (issue 14), 2 cores: native <= 3 s warm; every
interpretability metric <= 8 s through ``topiceval score`` (start-up and JIT cache load included);
>= 100x faster than the fastest peer; peak memory <= 1 GB for K = 100.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_ora import load_c2, shared_data, topic_matrix  # noqa: E402

PEERS = ("pyfgsea", "decoupler", "blitzgsea", "gseapy")


def yan_genes() -> np.ndarray:
    header = (shared_data() / "datasets" / "yan" / "yan_HIGHPRE.csv").open().readline()
    return np.array(header.rstrip("\n").split(",")[1:], dtype=object)


def clear_jit_cache() -> int:
    """Delete numba's cache files of the GSEA kernels; returns how many were removed."""
    import importlib.util

    spec = importlib.util.find_spec("topiceval.metrics._gsea_numba")
    folders = [Path(spec.origin).parent / "__pycache__"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        folders.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    removed = 0
    for folder in folders:
        for path in folder.rglob("_gsea_numba*.nb[ic]") if folder.is_dir() else []:
            path.unlink()
            removed += 1
    return removed


def child_native(args: argparse.Namespace) -> None:
    """In a fresh process: the first call (compile or cache load), then warm calls; prints JSON."""
    start = time.perf_counter()
    from topiceval.metrics import prerank_gsea

    import_s = time.perf_counter() - start
    warnings.simplefilter("ignore")
    c2, genes = load_c2(), yan_genes()
    beta = topic_matrix(genes, c2, args.topics)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    common = {"n_perm": args.n_perm, "seed": 0, "n_jobs": args.n_jobs, "progress": False}
    start = time.perf_counter()
    table = prerank_gsea(beta, genes, c2, **common)
    first = time.perf_counter() - start
    warm = []
    for _ in range(args.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        table = prerank_gsea(beta, genes, c2, **common)
        warm.append((time.perf_counter() - start, time.process_time() - cpu))
    print(json.dumps({
        "import_s": import_s, "first_s": first, "warm_s": [w for w, _ in warm], "warm_cpu_s": [c for _, c in warm],
        "rss_before_mb": rss_before, "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_sets": table.attrs["info"]["n_sets_tested"], "significant": int(table["significant"].sum()),
    }))


def run_child(args: argparse.Namespace, mode: str) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--topics", str(args.topics),
               "--n-perm", str(args.n_perm), "--n-jobs", str(args.n_jobs), "--repeats", str(args.repeats)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_peer(name: str, beta: np.ndarray, genes: np.ndarray, c2, n_perm: int, n_jobs: int):  # noqa: ANN001, ANN201
    """One peer on the given topics; returns (seconds, list of per-topic NES Series by set name)."""
    import pandas as pd

    from topiceval.metrics import prerank_gsea
    from topiceval.metrics.gsea import _members

    members, _, tested = _members(c2, genes, 15, 500)
    library = {c2.names[s]: list(genes[members.indices[members.indptr[i]:members.indptr[i + 1]]])
               for i, s in enumerate(tested)}
    if name in ("gseapy", "blitzgsea"):
        table, seconds = timed(prerank_gsea, beta, genes, c2, engine=name, n_perm=n_perm, seed=0,
                               n_jobs=n_jobs, progress=False)
        return seconds, [g.set_index("term")["nes"] for _, g in table.groupby("topic")]
    if name == "pyfgsea":
        import pyfgsea

        out, seconds = [], 0.0
        for k in range(beta.shape[0]):
            ranks = pd.DataFrame({"gene": genes, "score": beta[k]})
            result, s = timed(pyfgsea.run_gsea, ranks, library, min_size=15, max_size=500, seed=1,
                              nperm_simple=n_perm)
            seconds += s
            out.append(result.set_index("Pathway")["NES"])
        return seconds, out
    if name == "pyfgsea-defaults":
        import pyfgsea

        out, seconds = [], 0.0
        for k in range(beta.shape[0]):
            ranks = pd.DataFrame({"gene": genes, "score": beta[k]})
            result, s = timed(pyfgsea.run_gsea, ranks, library, min_size=15, max_size=500, seed=1)
            seconds += s
            out.append(result.set_index("Pathway")["NES"])
        return seconds, out
    if name == "decoupler":
        import decoupler as dc

        net = pd.DataFrame([(term, g) for term, gs in library.items() for g in gs], columns=["source", "target"])
        data = pd.DataFrame(beta, index=[f"topic{k}" for k in range(beta.shape[0])], columns=genes)
        (es, _pvals), seconds = timed(dc.mt.gsea, data, net, tmin=15, times=n_perm, seed=1)
        return seconds, [es.iloc[k] for k in range(beta.shape[0])]
    raise ValueError(name)


def score_cli(beta: np.ndarray, genes: np.ndarray, n_perm: int, n_jobs: int, folder: Path,
              cold: bool) -> tuple[float, float]:
    """``topiceval score`` with every interpretability metric, in a fresh process (wall, CPU s)."""
    beta_path, genes_path = folder / "beta.npy", folder / "genes.txt"
    np.save(beta_path, beta)
    genes_path.write_text("\n".join(genes) + "\n")
    if cold:
        clear_jit_cache()
    gmt = shared_data() / "gene_sets" / "c2.all.v7.1.symbols.gmt"
    command = [sys.executable, "-m", "topiceval", "score", "--topic-gene", str(beta_path), "--genes", str(genes_path),
               "--gene-sets", str(gmt), "--metrics", "tc,td,tq,ora,gsea", "--n-perm", str(n_perm),
               "--n-jobs", str(n_jobs), "--out", str(folder / "score.json")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--reference-topics", type=int, default=2, help="topics timed with each peer")
    parser.add_argument("--n-perm", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="warm native calls (median)")
    parser.add_argument("--skip", default="", help=f"comma-separated peers to skip: {','.join(PEERS)}")
    parser.add_argument("--no-score", action="store_true", help="skip the topiceval score runs")
    parser.add_argument("--no-reference", action="store_true", help="skip the numpy reference engine")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_native(args)
        return
    warnings.simplefilter("ignore")
    c2, genes = load_c2(), yan_genes()
    beta = topic_matrix(genes, c2, args.topics)
    print(f"data: K = {args.topics} topics x {genes.size} Yan genes, C2 v7.1, {args.n_perm} permutations, "
          f"n_jobs = {args.n_jobs}; {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}")

    removed = clear_jit_cache()
    cold = run_child(args, "native")
    cached = run_child(args, "native")
    warm = statistics.median(cached["warm_s"])
    print(f"native (compiled), {cold['n_sets']} sets tested, {cold['significant']} pairs at FDR <= 0.01:")
    print(f"  cold, JIT compile ({removed} cache files cleared): first call {cold['first_s']:.2f} s")
    print(f"  JIT from the on-disk cache: first call {cached['first_s']:.2f} s (import {cached['import_s']:.2f} s)")
    print(f"  warm: median {warm:.2f} s wall of {len(cached['warm_s'])} "
          f"({', '.join(f'{w:.2f}' for w in cached['warm_s'])}; CPU "
          f"{', '.join(f'{c:.2f}' for c in cached['warm_cpu_s'])} s)   (target <= 3 s)")
    print(f"  peak resident memory of that process: {cached['rss_peak_mb']:.0f} MB "
          f"({cached['rss_peak_mb'] - cached['rss_before_mb']:.0f} MB above the {cached['rss_before_mb']:.0f} MB "
          "before the first call)   (target <= 1 GB)")

    from topiceval.metrics import prerank_gsea
    from topiceval.metrics import gsea as engine

    native = prerank_gsea(beta, genes, c2, n_perm=args.n_perm, seed=0, n_jobs=args.n_jobs, progress=False)
    if not args.no_reference:
        resolve = engine._resolve_device
        engine._resolve_device = lambda device: ("numpy", None)
        try:
            reference, seconds = timed(prerank_gsea, beta, genes, c2, n_perm=args.n_perm, seed=0,
                                       n_jobs=args.n_jobs, progress=False)
        finally:
            engine._resolve_device = resolve
        same_p = (reference["pval"].to_numpy() == native["pval"].to_numpy()).mean()
        print(f"numpy reference engine (topiceval 0.1): {seconds:.1f} s; ratio / native warm {seconds / warm:.1f}x; "
              f"p equal on {same_p:.2%} of pairs, same FDR <= 0.01 pairs: "
              f"{bool(((reference['fdr'] <= 0.01) == (native['fdr'] <= 0.01)).all())}")

    n_ref = min(args.reference_topics, args.topics)
    skip = {s for s in args.skip.split(",") if s}
    fastest = None
    for name in ("pyfgsea-defaults", "pyfgsea", "decoupler", "blitzgsea", "gseapy"):
        if name.split("-")[0] in skip:
            continue
        seconds, nes = run_peer(name, beta[:n_ref], genes, c2, args.n_perm, args.n_jobs)
        scaled = seconds / n_ref * args.topics
        fastest = scaled if fastest is None else min(fastest, scaled)
        ours = native[native["topic"] < n_ref]
        r = []
        for k in range(n_ref):
            mine = ours[ours["topic"] == k].set_index("term")["nes"]
            theirs = nes[k].reindex(mine.index).astype(float)
            ok = np.isfinite(theirs.to_numpy())
            r.append(np.corrcoef(mine.to_numpy()[ok], theirs.to_numpy()[ok])[0, 1])
        label = "pyfgsea (defaults)" if name == "pyfgsea-defaults" else (
            f"pyfgsea (nperm_simple={args.n_perm})" if name == "pyfgsea" else name)
        print(f"{label:30s} {seconds:8.1f} s for {n_ref} topics; EXTRAPOLATED to {args.topics}: {scaled:8.0f} s; "
              f"ratio / native warm {scaled / warm:8.0f}x; NES Pearson vs native {np.mean(r):.3f}")
    if fastest is not None:
        print(f"fastest peer / native warm: {fastest / warm:.0f}x   (target >= 100x)")

    if not args.no_score:
        with tempfile.TemporaryDirectory() as folder:
            cold_s = score_cli(beta, genes, args.n_perm, args.n_jobs, Path(folder), cold=True)
            warm_s = score_cli(beta, genes, args.n_perm, args.n_jobs, Path(folder), cold=False)
        print(f"topiceval score --metrics tc,td,tq,ora,gsea (fresh process, start-up included): "
              f"cold JIT {cold_s[0]:.1f} s (CPU {cold_s[1]:.1f} s), JIT from the on-disk cache "
              f"{warm_s[0]:.1f} s (CPU {warm_s[1]:.1f} s)   (target <= 8 s)")


if __name__ == "__main__":
    main()
