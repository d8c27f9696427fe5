"""ORA for K = 100 topics, top 10 genes, MSigDB C2 v7.1 (5529 sets): topiceval vs gseapy.enrich.

    python benchmarks/bench_ora.py [--topics 100] [--reference-topics 10] [--repeats 5]

Data: the 5000 most expressed genes of the Darmanis et al. brain data (../shared/data), and a
seeded K x 5000 softmax topic-gene matrix with planted C2 signal (each topic's logits raised on
three C2 sets), so that enrichment is present. topiceval tests all topics at once
(``topic_ora``, best of ``--repeats``); the reference is the authors' loop, one ``gseapy.enrich``
call per topic, timed on ``--reference-topics`` topics and extrapolated per topic to K (the output
says so). The p-values of the timed topics are compared.

Target (issue 5): at most 0.5 s, at least 300x faster than the gseapy loop, on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from topiceval.gene_sets import GeneSets, read_gmt
from topiceval.metrics import top_gene_indices, topic_ora

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("TOPICEVAL_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not (path / "gene_sets").is_dir():
        sys.exit(f"real data not found at {path} (set TOPICEVAL_SHARED_DATA)")
    return path


def load_c2() -> GeneSets:
    return read_gmt(shared_data() / "gene_sets" / "c2.all.v7.1.symbols.gmt")


def vocabulary(n_genes: int = 5000) -> np.ndarray:
    """The ``n_genes`` genes with the most counts in the Darmanis et al. data (human symbols)."""
    import anndata

    adata = anndata.read_h5ad(shared_data() / "datasets" / "darmanis" / "darmanis.h5ad")
    totals = np.asarray(adata.X.sum(axis=0)).ravel()
    keep = np.sort(np.argsort(-totals, kind="stable")[:n_genes])
    return np.asarray(adata.var_names[keep], dtype=object)


def topic_matrix(genes: np.ndarray, gene_sets: GeneSets, n_topics: int, seed: int = 0,
                 n_planted: int = 3, boost: float = 1.5) -> np.ndarray:
    """Seeded softmax topics (like scE2TM's beta) with logits raised on ``n_planted`` sets each."""
    rng = np.random.default_rng(seed)
    columns = gene_sets.gene_index(genes)
    present = columns >= 0
    local = np.full(gene_sets.n_genes, -1)
    local[columns[present]] = np.flatnonzero(present)
    logits = rng.normal(size=(n_topics, genes.size))
    sizes = np.asarray(gene_sets.membership[:, columns[present]].sum(axis=1)).ravel()
    candidates = np.flatnonzero((sizes >= 15) & (sizes <= 300))
    for k in range(n_topics):
        for s in rng.choice(candidates, n_planted, replace=False):
            genes_of_set = local[gene_sets.membership[s].indices]
            logits[k, genes_of_set[genes_of_set >= 0]] += boost
    beta = np.exp(logits - logits.max(axis=1, keepdims=True))
    return beta / beta.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--reference-topics", type=int, default=10, help="topics timed with gseapy.enrich")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    c2 = load_c2()
    genes = vocabulary()
    beta = topic_matrix(genes, c2, args.topics)
    print(f"data: K = {args.topics} topics x {genes.size} genes (Darmanis top expressed), "
          f"C2 v7.1: {c2.n_sets} sets; top 10 genes per topic")

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = topic_ora(beta, genes, c2, 10)
        times.append(time.perf_counter() - start)
    ours = min(times)
    print(f"topiceval topic_ora:     {ours:8.3f} s for all {args.topics} topics (best of {args.repeats}); "
          f"ORA_N = {result['ORA_N']:.0f}, ORA_U = {result['ORA_U']:.3f}, "
          f"{int(result.table['significant'].sum())} enriched pairs")

    import gseapy

    n_ref = min(args.reference_topics, args.topics)
    top = top_gene_indices(beta, 10)
    library = c2.to_dict()
    start = time.perf_counter()
    frames = []
    for k in range(n_ref):
        res = gseapy.enrich(gene_list=list(genes[top[k]]), gene_sets=library, outdir=None, no_plot=True).res2d
        frames.append(res.assign(topic=k))
    reference = time.perf_counter() - start
    per_topic = reference / n_ref
    extrapolated = per_topic * args.topics
    print(f"gseapy.enrich loop:      {reference:8.3f} s for {n_ref} topics = {per_topic:.3f} s per topic; "
          f"EXTRAPOLATED to {args.topics} topics: {extrapolated:.1f} s")
    print(f"ratio gseapy / topiceval: {extrapolated / ours:8.0f}x   (target >= 300x; topiceval target <= 0.5 s)")

    import pandas as pd

    ref = pd.concat(frames)
    mine = result.table[result.table["topic"] < n_ref]
    merged = mine.merge(ref, left_on=["topic", "term"], right_on=["topic", "Term"], how="outer", indicator=True)
    same_pairs = bool((merged["_merge"] == "both").all())
    rel = np.max(np.abs(merged["pval"] - merged["P-value"]) / merged["P-value"]) if same_pairs else float("nan")
    print(f"parity on the {n_ref} timed topics: same pairs {same_pairs}, max relative p-value difference {rel:.1e}")


if __name__ == "__main__":
    main()
