"""Pre-ranked GSEA, K = 100, V = 5000, MSigDB C2 v7.1, 1000 permutations: native vs gseapy vs blitzgsea.

    python benchmarks/bench_gsea.py [--topics 100] [--reference-topics 2] [--n-jobs 2] [--no-all]

Data as in ``bench_ora.py`` (Darmanis top-5000 genes, seeded softmax topics with planted C2
signal). topiceval's native engine runs all K topics (``n_jobs`` threads). gseapy.prerank (the
authors' call, ``threads=n_jobs``) and blitzgsea (``processes=max(2, n_jobs)``) are run through
topiceval's engines on ``--reference-topics`` topics and EXTRAPOLATED per topic to K (the output
says so). Their agreement with the native engine on those topics is printed. Last, all
interpretability metrics (TC, TD, TQ, ORA, GSEA) through ``evaluate()``.

Targets (issue 5), on 2 cores: native <= 120 s and >= 25x faster than gseapy.prerank; all
interpretability metrics <= 3 minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_ora import load_c2, topic_matrix, vocabulary  # noqa: E402

from topiceval import TopicOutputs, evaluate  # noqa: E402
from topiceval.metrics import prerank_gsea  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    cpu = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--reference-topics", type=int, default=2, help="topics timed with gseapy / blitzgsea")
    parser.add_argument("--n-perm", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--no-all", action="store_true", help="skip the all-metrics evaluate() run")
    parser.add_argument("--no-blitzgsea", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    c2 = load_c2()
    genes = vocabulary()
    beta = topic_matrix(genes, c2, args.topics)
    common = {"n_perm": args.n_perm, "seed": 0, "n_jobs": args.n_jobs, "progress": False}
    native, wall, cpu = timed(prerank_gsea, beta, genes, c2, **common)
    info = native.attrs["info"]
    print(f"data: K = {args.topics} x {genes.size} genes, C2 v7.1 ({info['n_sets_tested']} sets with "
          f"15-500 model genes), {args.n_perm} permutations, n_jobs = {args.n_jobs}")
    print(f"native:     {wall:8.1f} s wall ({cpu:.1f} s CPU) for {args.topics} topics = "
          f"{wall / args.topics:.2f} s per topic; {int(native['significant'].sum())} pairs at FDR <= 0.01")

    n_ref = min(args.reference_topics, args.topics)
    subset = beta[:n_ref]
    mine = native[native["topic"] < n_ref]
    reference, ref_wall, _ = timed(prerank_gsea, subset, genes, c2, engine="gseapy", **common)
    per_topic = ref_wall / n_ref
    print(f"gseapy:     {ref_wall:8.1f} s wall for {n_ref} topics = {per_topic:.1f} s per topic; "
          f"EXTRAPOLATED to {args.topics} topics: {per_topic * args.topics:.0f} s")
    print(f"ratio gseapy / native: {per_topic * args.topics / wall:6.1f}x   (target >= 25x; native target <= 120 s)")
    es_diff = np.max(np.abs(mine["es"].to_numpy() - reference["es"].to_numpy()))
    nes_r = np.corrcoef(mine["nes"], reference["nes"])[0, 1]
    a = set(zip(mine["topic"][mine["fdr"] <= 0.05], mine["term"][mine["fdr"] <= 0.05], strict=True))
    b = set(zip(reference["topic"][reference["fdr"] <= 0.05], reference["term"][reference["fdr"] <= 0.05], strict=True))
    jaccard = len(a & b) / max(1, len(a | b))
    print(f"  native vs gseapy on those topics: max |ES diff| {es_diff:.1e}, NES Pearson {nes_r:.4f}, "
          f"FDR<=0.05 sets {len(a)} vs {len(b)}, Jaccard {jaccard:.3f}")

    if not args.no_blitzgsea:
        blitz, blitz_wall, _ = timed(prerank_gsea, subset, genes, c2, engine="blitzgsea", **common)
        per_topic = blitz_wall / n_ref
        print(f"blitzgsea:  {blitz_wall:8.1f} s wall for {n_ref} topics = {per_topic:.1f} s per topic; "
              f"EXTRAPOLATED to {args.topics} topics: {per_topic * args.topics:.0f} s "
              f"(ratio blitzgsea / native {per_topic * args.topics / wall:.1f}x); NES Pearson vs native "
              f"{np.corrcoef(mine['nes'], blitz['nes'])[0, 1]:.3f} (centred ranking, gamma null)")

    if not args.no_all:
        outputs = TopicOutputs(beta, genes, name="bench")
        result, all_wall, all_cpu = timed(evaluate, outputs, c2, metrics="tc,td,tq,ora,gsea",
                                          gsea_n_perm=args.n_perm, n_jobs=args.n_jobs)
        print(f"all interpretability metrics (TC, TD, TQ, ORA, GSEA) via evaluate(): {all_wall:.1f} s wall "
              f"({all_cpu:.1f} s CPU)   (target <= 180 s)")
        print("  " + ", ".join(f"{k} = {v:.4g}" for k, v in result.scores.items()))


if __name__ == "__main__":
    main()
