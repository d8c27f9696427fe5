"""Regenerate the shipped example ``topiceval/examples/yan_nmf_*`` (deterministic).

A 10-topic scikit-learn NMF of the Yan et al. 2013 human preimplantation embryo data
(90 cells x 4656 genes, log-scaled expression; from ../shared/data/datasets/yan):

    python scripts/make_example_yan_nmf.py [--shared ../shared/data]

Writes yan_nmf_topic_gene.csv.gz (10 x 4656, header of gene names), yan_nmf_cell_topic.csv.gz
(90 x 10, header of topic names) and yan_nmf_labels.txt (one cell type a line).
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import NMF

OUT = Path(__file__).resolve().parents[1] / "topiceval" / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default=Path(__file__).resolve().parents[2] / "shared" / "data", type=Path)
    args = parser.parse_args()
    expr = pd.read_csv(args.shared / "datasets" / "yan" / "yan_HIGHPRE.csv", index_col=0)
    labels = pd.read_csv(args.shared / "datasets" / "yan" / "yan_cell_anno.csv", index_col=0).iloc[:, 0]
    assert len(labels) == len(expr)
    nmf = NMF(n_components=10, init="nndsvda", max_iter=1000, random_state=0)
    cells = nmf.fit_transform(expr.to_numpy(dtype=np.float64))
    topics = nmf.components_
    topic_gene = topics / topics.sum(axis=1, keepdims=True)
    cell_topic = cells / np.maximum(cells.sum(axis=1, keepdims=True), 1e-12)
    OUT.mkdir(parents=True, exist_ok=True)
    names = [f"topic{k}" for k in range(topic_gene.shape[0])]
    for frame, fname in (
        (pd.DataFrame(topic_gene, index=names, columns=expr.columns), "topic_gene.csv.gz"),
        (pd.DataFrame(cell_topic, index=expr.index, columns=names), "cell_topic.csv.gz"),
    ):
        text = frame.to_csv(float_format="%.6g").encode()
        (OUT / f"yan_nmf_{fname}").write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
    (OUT / "yan_nmf_labels.txt").write_text("\n".join(labels.astype(str)) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
