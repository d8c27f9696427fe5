"""Regenerate the embedded default dataset ``topiceval/datasets/pollen_hvg5000.h5ad`` (deterministic).

    python scripts/make_default_dataset.py [--shared ../shared/data] [--check]

From ``datasets/pollen/pollen.h5ad`` of the shared data (Pollen et al. 2014: 299 cells x 23794 genes,
read counts, 11 cell types):

1. ``topiceval.datasets.preprocess(pollen, n_top_genes=5000)`` (normalise to 1e4, log1p, seurat
   HVG on all genes: the paper's preprocessing) chooses 5000 genes;
2. the **raw counts** of those genes for all 299 cells are written as ``int32`` CSR, with
   ``obs["cell_type"]`` and ``obs["total_counts_all_genes"]`` (library size over all 23794 genes),
   genes in the source's order, gzip level 9.

The file is byte-for-byte the same on every run (h5py writes no timestamps); ``--check`` rebuilds it
in a temporary file and compares the SHA-256 with the shipped one instead of overwriting it.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from topiceval.datasets import DATASETS, DEFAULT, load_dataset, preprocess
from topiceval.io import atomic_path

OUT = Path(__file__).resolve().parents[1] / "topiceval" / "datasets" / DEFAULT.files[0]


def build(shared: Path):
    import anndata

    source = load_dataset("pollen", data_dir=shared)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pollen has no empty cell: nothing may be dropped
        chosen = preprocess(source, n_top_genes=DEFAULT.n_genes)
    keep = source.var_names.get_indexer(chosen.var_names)
    assert (keep >= 0).all() and len(keep) == DEFAULT.n_genes
    keep = np.sort(keep)
    counts = sp.csr_matrix(source.X)
    total = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    subset = counts[:, keep]
    assert np.array_equal(subset.data, np.round(subset.data))
    matrix = sp.csr_matrix(subset, dtype=np.int32)
    matrix.sort_indices()
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(source.obs["cell_type"].astype(str).to_numpy()),
            "total_counts_all_genes": total,
        },
        index=source.obs_names.astype(str),
    )
    var = pd.DataFrame(index=source.var_names[keep].astype(str))
    adata = anndata.AnnData(X=matrix, obs=obs, var=var)
    adata.uns["topiceval_dataset"] = {
        **DEFAULT.as_uns(),
        "made_by": "scripts/make_default_dataset.py",
        "selection": "topiceval.datasets.preprocess(pollen, n_top_genes=5000): normalize_total "
        "(target_sum=1e4), log1p, highly_variable_genes(flavor='seurat', n_bins=20) on all genes",
        "source_file": DATASETS["pollen"].files[0],
    }
    return adata


def write(adata, path: Path) -> None:
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp, compression="gzip", compression_opts=9)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=Path(__file__).resolve().parents[2] / "shared" / "data", type=Path)
    parser.add_argument("--check", action="store_true", help="rebuild into a temporary file and compare")
    args = parser.parse_args()
    adata = build(args.shared)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            rebuilt = Path(tmp) / OUT.name
            write(adata, rebuilt)
            same = sha256(rebuilt) == sha256(OUT)
        print(f"{OUT}: {'identical' if same else 'DIFFERS'} (sha256 {sha256(OUT)})")
        raise SystemExit(0 if same else 1)
    write(adata, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, sha256 {sha256(OUT)})")


if __name__ == "__main__":
    main()
