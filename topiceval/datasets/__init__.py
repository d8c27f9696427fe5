"""Datasets: read expression data, preprocess it as the paper did, load registered and shipped data.

The public API (other parts of topiceval build on exactly these names):

* :func:`read` ``(path, *, label_key, labels, symbol_key, orientation)``: ``.h5ad``, a 10x ``mtx``
  folder or a dense CSV / TSV table (cells x genes or genes x cells, detected, or confirmed with
  ``orientation=``) into AnnData with gene symbols as ``var_names``.
* :func:`preprocess` ``(adata, n_top_genes=5000, ...)``: the scE2TM paper's preprocessing (section
  4.1.1): raw counts kept in ``layers["counts"]``, library-size normalisation (``target_sum=1e4``),
  ``log1p``, highly variable genes by scanpy's ``seurat`` definition, empty cells and genes
  dropped, every step recorded in ``uns["topiceval_preprocess"]``. Sparse stays sparse; scanpy is
  not needed (the tests check that the result matches it).
* :func:`load_dataset` ``(name)``: a dataset of the shared data folder registered in
  :data:`DATASETS` (``yan``, ``wang``, ``pollen``, ``darmanis``, ``kang_pbmc``, ``ting``), with its
  species, label column, citation and licence.
* :func:`load_default` ``()``: the dataset shipped inside the package (:data:`DEFAULT`: Pollen et
  al. 2014, 299 cells x 5000 genes of raw counts, 11 cell types); no download, no data folder.
* :func:`synthetic` ``(...)`` and :func:`true_outputs`: counts drawn from a topic model whose
  topics are real gene sets, with known cell types, and its true topics as ``TopicOutputs``.

Importing this module does not import anndata; the functions do when called.
"""

from __future__ import annotations

from .preprocess import (
    FLAVORS,
    UNS_KEY,
    check_counts,
    check_finite_matrix,
    highly_variable_genes,
    log1p,
    mean_var,
    normalize_total,
    preprocess,
)
from .readers import (
    ORIENTATIONS,
    READ_KEY,
    detect_orientation,
    label_key_of,
    read,
    read_10x_mtx,
    read_table,
    standardize,
)
from .registry import (
    DATASET_KEY,
    DATASETS,
    DEFAULT,
    DatasetInfo,
    load_dataset,
    load_default,
    shared_data_dir,
)
from .synthetic import synthetic, true_outputs

__all__ = [
    "DATASETS",
    "DATASET_KEY",
    "DEFAULT",
    "FLAVORS",
    "ORIENTATIONS",
    "READ_KEY",
    "UNS_KEY",
    "DatasetInfo",
    "check_counts",
    "check_finite_matrix",
    "detect_orientation",
    "highly_variable_genes",
    "label_key_of",
    "load_dataset",
    "load_default",
    "log1p",
    "mean_var",
    "normalize_total",
    "preprocess",
    "read",
    "read_10x_mtx",
    "read_table",
    "shared_data_dir",
    "standardize",
    "synthetic",
    "true_outputs",
]
