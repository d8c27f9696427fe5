"""Read expression data into AnnData: ``.h5ad``, 10x ``mtx`` folders, dense CSV / TSV tables.

Whatever the format, :func:`read` returns cells x genes with gene **symbols** as ``var_names``
(gene sets are matched by symbol) and checks what every later step relies on (see
:func:`standardize`): finite values, symbols rather than Ensembl identifiers, unique gene and cell
names, and the label column if one is named. What it read and decided is recorded in
``uns["topiceval_read"]``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from topiceval._utils import PathLike, as_path, preview
from topiceval.errors import InputError

from .preprocess import check_finite_matrix

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "ORIENTATIONS",
    "READ_KEY",
    "detect_orientation",
    "label_key_of",
    "read",
    "read_10x_mtx",
    "read_table",
    "standardize",
]

#: Orientations of a dense table: ``auto`` detects which axis holds the genes.
ORIENTATIONS = ("auto", "cells_by_genes", "genes_by_cells")
#: Where :func:`read` / :func:`standardize` record what they did.
READ_KEY = "topiceval_read"

Orientation = Literal["auto", "cells_by_genes", "genes_by_cells"]

_ENSEMBL = re.compile(r"^ENS[A-Z]{0,6}[GT]\d{6,}(\.\d+)?$")
_TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
# Orientation detection: the gene axis must have at least this share of gene-like names, and
# at least this many times the share of the other axis.
_GENE_LIKE_MIN = 0.10
_GENE_LIKE_RATIO = 4.0
_SAMPLE = 3000


# --------------------------------------------------------------------------- entry point
def read(
    path: PathLike,
    *,
    label_key: str | None = None,
    labels: PathLike | Sequence[Any] | None = None,
    symbol_key: str | None = None,
    orientation: Orientation = "auto",
) -> AnnData:
    """Read expression data (cells x genes) into an AnnData.

    Parameters
    ----------
    path
        An ``.h5ad`` file; a 10x folder (``matrix.mtx[.gz]``, ``features.tsv[.gz]`` or
        ``genes.tsv[.gz]``, ``barcodes.tsv[.gz]``) or its ``matrix.mtx[.gz]``; or a dense
        ``.csv`` / ``.tsv`` / ``.txt`` table (optionally gzip) with a header row of names and a
        first column of names.
    label_key
        ``obs`` column holding the cell labels; an error lists the columns if it is absent. With
        ``labels``, the column to store them in (default ``"cell_type"``).
    labels
        Labels to attach: a sequence (one per cell) or a file as accepted by
        :func:`topiceval.io.read_labels` (one label a line, ``table.csv:column``,
        ``file.h5ad:obs_column``).
    symbol_key
        ``var`` column holding gene symbols, when ``var_names`` are identifiers (Ensembl). The
        identifiers move to ``var["gene_ids"]``.
    orientation
        Dense tables only: ``"cells_by_genes"`` (a row per cell), ``"genes_by_cells"``, or
        ``"auto"`` (default): the axis whose names look like gene symbols or Ensembl IDs is the
        gene axis. An undecidable table is an error asking for this option; an explicit value
        that contradicts a clear detection is obeyed with a warning.

    Returns
    -------
    AnnData
        Cells x genes; ``X`` as stored (10x and tables: ``float32`` CSR), ``var_names`` symbols,
        ``uns["topiceval_read"]`` what was read and decided.

    Raises
    ------
    InputError
        Missing file, unknown format, NaN or infinite values, Ensembl-only gene names without a
        ``symbol_key``, an absent label column, labels of the wrong length, an undecidable table
        orientation.
    """
    import anndata

    p = as_path(path)
    if not p.exists():
        raise InputError(f"expression data not found: {p}")
    name = p.name.lower().removesuffix(".gz")
    facts: dict[str, Any] = {"path": str(p)}
    if p.is_dir() or name.endswith(".mtx"):
        adata, more = read_10x_mtx(p if p.is_dir() else p.parent)
        facts.update(more)
    elif name.endswith(".h5ad"):
        try:
            with _quiet_duplicates():
                adata = anndata.read_h5ad(p)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise InputError(f"cannot read h5ad {p}: {exc}") from None
        facts["format"] = "h5ad"
    elif name.endswith(_TABLE_SUFFIXES):
        adata, more = read_table(p, orientation=orientation)
        facts.update(more)
    else:
        raise InputError(
            f"unknown expression format {p.name!r}: expected .h5ad, a 10x folder (matrix.mtx), "
            "or a .csv / .tsv / .txt table"
        )
    return standardize(adata, label_key=label_key, labels=labels, symbol_key=symbol_key, facts=facts)


@contextlib.contextmanager
def _quiet_duplicates() -> Iterator[None]:
    """anndata warns about repeated names; :func:`standardize` handles them with its own warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(Variable|Observation) names are not unique")
        yield


# --------------------------------------------------------------------------- 10x
def _find(folder: Path, stems: Sequence[str]) -> Path | None:
    for stem in stems:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _open(path: Path):
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_10x_mtx(folder: PathLike, *, gex_only: bool = True) -> tuple[AnnData, dict[str, Any]]:
    """Read a 10x Genomics ``mtx`` folder (Cell Ranger v2 or v3 layout).

    Parameters
    ----------
    folder
        Holds ``matrix.mtx[.gz]`` (genes x cells), ``features.tsv[.gz]`` (v3: ID, symbol, type)
        or ``genes.tsv[.gz]`` (v2: ID, symbol), and ``barcodes.tsv[.gz]``.
    gex_only
        Keep only ``Gene Expression`` features (antibody capture and CRISPR guides dropped), as
        ``scanpy.read_10x_mtx`` does by default.

    Returns
    -------
    adata
        Cells x genes, ``X`` ``float32`` CSR; ``var_names`` the symbols, ``var["gene_ids"]``
        the IDs, ``var["feature_types"]`` when given. Not yet standardised (see :func:`read`).
    facts
        What was read, for ``uns["topiceval_read"]``.
    """
    import anndata
    import scipy.io

    folder = as_path(folder)
    matrix_file = _find(folder, ["matrix.mtx"])
    features_file = _find(folder, ["features.tsv", "genes.tsv"])
    barcodes_file = _find(folder, ["barcodes.tsv"])
    missing = [
        what
        for what, found in (
            ("matrix.mtx[.gz]", matrix_file),
            ("features.tsv[.gz] or genes.tsv[.gz]", features_file),
            ("barcodes.tsv[.gz]", barcodes_file),
        )
        if found is None
    ]
    if missing:
        present = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
        raise InputError(
            f"{folder} is not a 10x mtx folder: {', '.join(missing)} missing "
            f"(it holds: {preview(present) or 'nothing'})"
        )
    try:
        with _open(matrix_file) as handle:  # type: ignore[arg-type]
            matrix = scipy.io.mmread(handle)
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read {matrix_file}: {exc}") from None
    matrix = sp.csr_matrix(sp.coo_matrix(matrix).T, dtype=np.float32)
    read_tsv = functools.partial(pd.read_csv, sep="\t", header=None, dtype=str, keep_default_na=False)
    features = read_tsv(features_file)
    barcodes = read_tsv(barcodes_file).iloc[:, 0]
    if matrix.shape != (len(barcodes), len(features)):
        raise InputError(
            f"{matrix_file} is {matrix.shape[1]} features x {matrix.shape[0]} barcodes, but "
            f"{features_file.name} lists {len(features)} features and {barcodes_file.name} "  # type: ignore[union-attr]
            f"{len(barcodes)} barcodes"
        )
    ids = features.iloc[:, 0].to_numpy()
    symbols = features.iloc[:, 1].to_numpy() if features.shape[1] > 1 else ids
    var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(symbols, name=None))
    facts: dict[str, Any] = {"format": "10x_mtx", "features_file": features_file.name}  # type: ignore[union-attr]
    if features.shape[1] > 2:
        var["feature_types"] = features.iloc[:, 2].to_numpy()
        if gex_only:
            keep = var["feature_types"].to_numpy() == "Gene Expression"
            facts["n_non_gene_features_dropped"] = int((~keep).sum())
            if not keep.all():
                matrix = matrix[:, np.flatnonzero(keep)]
                var = var.iloc[np.flatnonzero(keep)]
    var.index = var.index.astype(str)
    obs = pd.DataFrame(index=pd.Index(barcodes.to_numpy(), name=None))
    with _quiet_duplicates():
        return anndata.AnnData(X=matrix, obs=obs, var=var), facts


# --------------------------------------------------------------------------- dense tables
def _separator(path: Path) -> str:
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    with _open(path) as handle:
        first = handle.readline().decode("utf-8-sig", errors="replace")
    return "\t" if "\t" in first else ","


@functools.lru_cache(maxsize=1)
def _known_symbols() -> frozenset[str]:
    """Upper-case symbols of the shipped collections (human and mouse), for orientation checks."""
    from topiceval.gene_sets import SHIPPED, read_gmt

    known: set[str] = set()
    for collection in SHIPPED.values():
        known.update(read_gmt(collection.path, case="upper").genes)
    return frozenset(known)


def _gene_like(names: Sequence[str]) -> float:
    """Share of names that are known gene symbols (any case) or Ensembl IDs."""
    names = [str(n) for n in names]
    if not names:
        return 0.0
    if len(names) > _SAMPLE:  # an even, deterministic sample
        step = len(names) / _SAMPLE
        names = [names[int(i * step)] for i in range(_SAMPLE)]
    known = _known_symbols()
    hits = sum(1 for n in names if n.strip().upper() in known or _ENSEMBL.match(n.strip()))
    return hits / len(names)


def detect_orientation(row_names: Sequence[str], column_names: Sequence[str]) -> tuple[str | None, str]:
    """Which axis of a table holds the genes, from its names.

    A name is gene-like when it is a symbol of the shipped gene-set collections (human or mouse,
    any case) or an Ensembl ID. The gene axis needs at least 10 % gene-like names and four times
    the share of the other axis.

    Returns
    -------
    orientation
        ``"cells_by_genes"`` (genes are the columns), ``"genes_by_cells"`` or ``None`` when the
        names do not tell.
    reason
        The two shares, in words.
    """
    rows, columns = _gene_like(row_names), _gene_like(column_names)
    reason = f"gene-like names: {rows:.0%} of {len(row_names)} rows, {columns:.0%} of {len(column_names)} columns"
    if columns >= _GENE_LIKE_MIN and columns >= _GENE_LIKE_RATIO * rows:
        return "cells_by_genes", reason
    if rows >= _GENE_LIKE_MIN and rows >= _GENE_LIKE_RATIO * columns:
        return "genes_by_cells", reason
    return None, reason


def read_table(
    path: PathLike, *, orientation: Orientation = "auto", chunk_rows: int = 2000
) -> tuple[AnnData, dict[str, Any]]:
    """Read a dense delimited table of expression values into a sparse AnnData.

    The table has a header row of column names and a first column of row names (an empty corner
    cell is fine). It is parsed ``chunk_rows`` rows at a time, each chunk made sparse at once, so
    the dense table is never held whole.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``, ``.tab`` or ``.txt``, plain or gzip.
    orientation
        See :func:`read`.
    chunk_rows
        Rows parsed at a time.

    Returns
    -------
    adata
        Cells x genes, ``X`` ``float32`` CSR.
    facts
        Orientation used and how it was decided, for ``uns["topiceval_read"]``.
    """
    import anndata

    if orientation not in ORIENTATIONS:
        raise InputError(f"unknown orientation {orientation!r}; use one of {', '.join(ORIENTATIONS)}")
    p = as_path(path)
    sep = _separator(p)
    try:
        # The header is parsed here, not by pandas, which would rename repeated names ("A.1").
        with _open(p) as handle:
            first = handle.readline().decode("utf-8-sig").rstrip("\r\n")
        column_names = next(csv.reader([first], delimiter=sep))[1:]
        row_names = pd.read_csv(p, sep=sep, usecols=[0], dtype=str, keep_default_na=False).iloc[:, 0]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, StopIteration) as exc:
        raise InputError(f"cannot parse table {p}: {exc}") from None
    if not column_names or row_names.empty:
        raise InputError(f"table {p} has no data: it needs a header row and a first column of names")
    detected, reason = detect_orientation(list(row_names), column_names)
    facts: dict[str, Any] = {"format": "table", "separator": sep, "orientation_evidence": reason}
    if orientation == "auto":
        if detected is None:
            raise InputError(
                f"cannot tell whether the genes of {p.name} are its rows or its columns ({reason}); "
                "pass orientation='cells_by_genes' or orientation='genes_by_cells'"
            )
        used, facts["orientation_source"] = detected, "detected"
    else:
        used, facts["orientation_source"] = orientation, "given"
        if detected is not None and detected != orientation:
            warnings.warn(
                f"orientation={orientation!r} was given but the names of {p.name} suggest "
                f"{detected!r} ({reason}); reading it as given",
                UserWarning,
                stacklevel=3,
            )
    facts["orientation"] = used

    blocks = []
    try:
        reader = pd.read_csv(p, sep=sep, index_col=0, chunksize=chunk_rows)
        for chunk in reader:
            if chunk.shape[1] != len(column_names):
                raise InputError(
                    f"table {p} has {chunk.shape[1]} value columns but {len(column_names)} names in its header"
                )
            try:
                values = chunk.to_numpy(dtype=np.float32)
            except (TypeError, ValueError):
                bad = [str(c) for c in chunk.columns if not pd.api.types.is_numeric_dtype(chunk[c])]
                raise InputError(f"table {p} has non-numeric values in column(s) {preview(bad)}") from None
            check_finite_matrix(values, f"table {p.name}")
            blocks.append(sp.csr_matrix(values))
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot parse table {p}: {exc}") from None
    matrix = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
    rows = pd.Index(row_names.astype(str).to_numpy(), name=None)
    columns = pd.Index(column_names, name=None)
    if used == "genes_by_cells":
        matrix = matrix.T.tocsr()
        rows, columns = columns, rows
    matrix.sort_indices()
    with _quiet_duplicates():
        adata = anndata.AnnData(X=matrix, obs=pd.DataFrame(index=rows), var=pd.DataFrame(index=columns))
    return adata, facts


# --------------------------------------------------------------------------- checks
def standardize(
    adata: AnnData,
    *,
    label_key: str | None = None,
    labels: PathLike | Sequence[Any] | None = None,
    symbol_key: str | None = None,
    facts: dict[str, Any] | None = None,
) -> AnnData:
    """Check and tidy an AnnData in place so that topiceval can use it; returns it.

    * ``X`` must be finite (NaN or infinity is an error naming the first cell and gene);
    * gene symbols: ``symbol_key`` names a ``var`` column of symbols that becomes ``var_names``
      (the old names move to ``var["gene_ids"]``); Ensembl IDs as names without it are an error;
    * duplicate gene (or cell) names are made unique (``ACTB``, ``ACTB-1``, as anndata does) with a
      warning: the renamed copies match no gene set;
    * ``labels`` are stored in ``obs[label_key]`` (default ``"cell_type"``); ``label_key`` must
      then exist in ``obs`` (the error lists the columns);
    * ``uns["topiceval_read"]`` records the label column, the symbol column and what changed.

    Parameters
    ----------
    adata
        Cells x genes.
    label_key, labels, symbol_key
        As for :func:`read`.
    facts
        Extra facts to record (the reader's).
    """
    record: dict[str, Any] = dict(facts or {})
    if adata.X is not None and adata.n_vars:
        check_finite_matrix(adata.X, "X")

    # -- gene symbols
    if symbol_key is not None:
        if symbol_key not in adata.var.columns:
            raise InputError(
                f"no var column {symbol_key!r} holding gene symbols; var columns: "
                f"{preview(adata.var.columns, 30) or 'none'}"
            )
        symbols = adata.var[symbol_key].astype(object)
        empty = symbols.isna().to_numpy() | (symbols.astype(str).str.strip() == "").to_numpy()
        old = adata.var_names.to_numpy().astype(str)
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} gene(s) have no symbol in var[{symbol_key!r}]; their names are "
                f"kept ({preview(old[empty], 5)})",
                UserWarning,
                stacklevel=2,
            )
        new = np.where(empty, old, symbols.astype(str).to_numpy())
        id_column = "gene_ids" if "gene_ids" not in adata.var.columns else "gene_ids_original"
        adata.var[id_column] = old
        adata.var_names = pd.Index(new, name=None)
        record["symbol_key"] = symbol_key
    names = adata.var_names.astype(str)
    if len(names):
        ensembl = np.fromiter((bool(_ENSEMBL.match(n)) for n in names), dtype=bool, count=len(names))
        if ensembl.mean() > 0.5:
            candidates = [c for c in adata.var.columns if adata.var[c].dtype == object or isinstance(adata.var[c].dtype, pd.CategoricalDtype)]
            raise InputError(
                f"the gene names are Ensembl IDs ({int(ensembl.sum())} of {len(names)}, e.g. "
                f"{preview(names[ensembl][:3])}); topiceval matches gene sets by symbol: name the var "
                f"column of symbols with symbol_key= (text var columns: {preview(candidates, 20) or 'none'})"
            )
        blank = np.flatnonzero(names.str.strip() == "")
        if len(blank):
            raise InputError(f"{len(blank)} gene name(s) are empty, at positions {preview(blank)}")
    duplicated = adata.var_names[adata.var_names.duplicated()].unique()
    if len(duplicated):
        warnings.warn(
            f"{len(duplicated)} gene name(s) occur more than once ({preview(duplicated)}); they were "
            "made unique by appending -1, -2, ... (those copies match no gene set)",
            UserWarning,
            stacklevel=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata.var_names_make_unique()
    record["n_duplicate_genes"] = len(duplicated)
    if adata.obs_names.has_duplicates:
        n_dup = int(adata.obs_names.duplicated().sum())
        warnings.warn(
            f"{n_dup} cell name(s) repeat an earlier one; they were made unique by appending -1, -2, ...",
            UserWarning,
            stacklevel=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata.obs_names_make_unique()

    # -- labels
    if labels is not None:
        key = label_key or "cell_type"
        values = _label_values(labels)
        if len(values) != adata.n_obs:
            raise InputError(f"{len(values)} labels were given for {adata.n_obs} cells")
        adata.obs[key] = pd.Categorical([None if v is None else str(v) for v in values])
        label_key = key
    if label_key is not None:
        if label_key not in adata.obs.columns:
            raise InputError(
                f"no obs column {label_key!r} with cell labels; obs columns: "
                f"{preview(adata.obs.columns, 30) or 'none'}"
            )
        n_missing = int(adata.obs[label_key].isna().sum())
        if n_missing:
            warnings.warn(
                f"{n_missing} of {adata.n_obs} cells have no label in obs[{label_key!r}]",
                UserWarning,
                stacklevel=2,
            )
        record["label_key"] = label_key
    previous = dict(adata.uns.get(READ_KEY, {}))
    previous.update(record)
    adata.uns[READ_KEY] = previous
    return adata


def _label_values(labels: PathLike | Sequence[Any]) -> list[Any]:
    if isinstance(labels, str | os.PathLike):
        from topiceval.io import read_labels

        return list(read_labels(labels))
    if isinstance(labels, pd.Series | pd.Index | pd.Categorical):
        values = list(labels)
    else:
        values = list(np.asarray(labels, dtype=object).ravel()) if not isinstance(labels, list) else labels
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values]


def label_key_of(adata: AnnData, default: str | None = None) -> str | None:
    """The label column recorded by :func:`read` / :func:`~topiceval.datasets.load_dataset`."""
    return adata.uns.get(READ_KEY, {}).get("label_key", default)
