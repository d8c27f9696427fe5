"""The paper's preprocessing, implemented with numpy / scipy / pandas (scanpy is not needed).

scE2TM section 4.1.1: "we use ``scanpy.pp.log1p()`` to log-transform the counts of each cell, and
then use ``scanpy.pp.highly_variable_genes()`` to pick out the top-5000 highly variable genes"
(Scanpy 1.9.8). :func:`preprocess` runs, in this order:

1. check that the matrix holds counts (finite, non-negative, integer unless allowed otherwise);
2. drop empty cells and genes (``min_counts_per_cell``, ``min_cells_per_gene``);
3. keep the raw counts in ``layers["counts"]``;
4. library-size normalisation (``normalize=True``, ``target_sum=1e4``), as
   ``scanpy.pp.normalize_total``; the paper's text mentions only ``log1p``, so ``normalize=False``
   reproduces it literally;
5. ``log1p`` (natural log), as ``scanpy.pp.log1p``;
6. highly variable genes as ``scanpy.pp.highly_variable_genes`` with its default
   ``flavor="seurat"`` (the flavour Scanpy 1.9.8 runs when none is named, as in the paper), or
   ``flavor="cell_ranger"``; the top ``n_top_genes`` are kept (``subset=True``).

Every step and its parameters are recorded in ``uns["topiceval_preprocess"]``. A sparse matrix
stays sparse throughout: statistics are accumulated over blocks of rows from the CSR arrays, and
nothing of size cells x genes is ever densified.

Numerical conventions follow scanpy exactly, so that the selected genes are the same (the tests
compare with scanpy on real data): the normalised and log values keep ``float32`` (scanpy keeps
the input's float precision and turns integers into ``float32``); library sizes are summed in
``float64`` and rounded to the matrix dtype before the division; gene means and variances are
accumulated in ``float64`` with squares taken in the matrix precision; the variance is the
unbiased one (``ddof=1``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from topiceval._utils import preview
from topiceval.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "FLAVORS",
    "UNS_KEY",
    "check_counts",
    "check_finite_matrix",
    "highly_variable_genes",
    "log1p",
    "mean_var",
    "normalize_total",
    "preprocess",
]

#: HVG flavours implemented (scanpy's definitions of the same names).
FLAVORS = ("seurat", "cell_ranger")
#: Where :func:`preprocess` records what it did.
UNS_KEY = "topiceval_preprocess"
#: Rows per block when statistics are accumulated over a sparse or dense matrix.
BLOCK_ROWS = 8192

Flavor = Literal["seurat", "cell_ranger"]


# --------------------------------------------------------------------------- matrix helpers
def _as_matrix(matrix: Any, what: str) -> np.ndarray | sp.csr_matrix:
    """CSR stays CSR, other sparse formats become CSR, anything else a 2-d ndarray."""
    if sp.issparse(matrix):
        return matrix.tocsr() if matrix.format != "csr" else matrix
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise InputError(f"{what} must be a 2-d matrix, got {array.ndim} dimension(s)")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"{what} must be numeric, got dtype {array.dtype}")
    return array


def _values(matrix: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """The stored values: ``data`` of a sparse matrix, the array itself otherwise."""
    return matrix.data if sp.issparse(matrix) else matrix


def _row_blocks(n_rows: int, block: int = BLOCK_ROWS) -> Iterator[tuple[int, int]]:
    for start in range(0, n_rows, block):
        yield start, min(start + block, n_rows)


def _blocks(matrix: np.ndarray | sp.csr_matrix) -> Iterator[tuple[int, int, np.ndarray | None, np.ndarray]]:
    """``(start, stop, columns, values)`` per block of rows: for CSR the column indices and stored
    values of those rows (views, no copy), for a dense matrix ``None`` and the 2-d block."""
    for start, stop in _row_blocks(matrix.shape[0]):
        if sp.issparse(matrix):
            lo, hi = matrix.indptr[start], matrix.indptr[stop]
            yield start, stop, matrix.indices[lo:hi], matrix.data[lo:hi]
        else:
            yield start, stop, None, matrix[start:stop]


def _flat_chunks(values: np.ndarray, size: int = 1 << 24) -> Iterator[tuple[int, np.ndarray]]:
    flat = values.reshape(-1)
    for start in range(0, flat.size, size):
        yield start, flat[start : start + size]


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """scanpy's rule: float32 / float64 stay, anything else (integers, bool) becomes float32."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _position(matrix: np.ndarray | sp.csr_matrix, flat: int) -> tuple[int, int]:
    """(row, column) of the ``flat``-th stored value."""
    if sp.issparse(matrix):
        row = int(np.searchsorted(matrix.indptr, flat, side="right") - 1)
        return row, int(matrix.indices[flat])
    return tuple(int(i) for i in np.unravel_index(flat, matrix.shape))  # type: ignore[return-value]


def check_finite_matrix(matrix: Any, what: str = "X") -> None:
    """Raise :class:`InputError` if a (dense or sparse) matrix holds NaN or infinite values."""
    matrix = _as_matrix(matrix, what)
    values = _values(matrix)
    if not np.issubdtype(values.dtype, np.inexact):
        return
    n_nan = n_inf = 0
    first = None
    for start, chunk in _flat_chunks(values):
        bad = ~np.isfinite(chunk)
        if bad.any():
            nan = int(np.isnan(chunk).sum())
            n_nan += nan
            n_inf += int(bad.sum()) - nan
            if first is None:
                first = start + int(np.flatnonzero(bad)[0])
    if first is not None:
        raise InputError(
            f"{what} holds {n_nan} NaN and {n_inf} infinite value(s), the first at (cell, gene) "
            f"{_position(matrix, first)}"
        )


def check_counts(matrix: Any, *, what: str = "X", allow_non_integer: bool = False) -> dict[str, Any]:
    """Check that a matrix holds raw counts; return facts about it.

    Parameters
    ----------
    matrix
        ``(n_cells, n_genes)``, dense or sparse.
    what
        Name used in error messages (``"X"``, ``"layers['counts']"``).
    allow_non_integer
        Accept non-negative non-integer values (TPM, RPKM, corrected counts).

    Returns
    -------
    dict
        ``dtype``, ``integer`` (whether every value is a whole number), ``max``.

    Raises
    ------
    InputError
        NaN or infinite values, negative values, or non-integer values unless allowed; the message
        gives the first offending cell and gene.
    """
    matrix = _as_matrix(matrix, what)
    check_finite_matrix(matrix, what)
    values = _values(matrix)
    if values.dtype == bool:
        return {"dtype": "bool", "integer": True, "max": float(values.any())}
    floating = np.issubdtype(values.dtype, np.floating)
    n_negative = n_fractional = 0
    first_negative = first_fractional = None
    maximum = 0.0
    for start, chunk in _flat_chunks(values):
        if chunk.size:
            maximum = max(maximum, float(chunk.max()))
        negative = chunk < 0
        if negative.any():
            n_negative += int(negative.sum())
            if first_negative is None:
                first_negative = start + int(np.flatnonzero(negative)[0])
        if floating:
            fractional = chunk != np.floor(chunk)
            if fractional.any():
                n_fractional += int(fractional.sum())
                if first_fractional is None:
                    first_fractional = start + int(np.flatnonzero(fractional)[0])
    flat = values.reshape(-1)
    if first_negative is not None:
        raise InputError(
            f"{what} holds {n_negative} negative value(s) (e.g. {float(flat[first_negative])!r} at "
            f"(cell, gene) {_position(matrix, first_negative)}); preprocessing needs raw counts"
        )
    if first_fractional is not None and not allow_non_integer:
        raise InputError(
            f"{what} holds {n_fractional} non-integer value(s) (e.g. {float(flat[first_fractional])!r} "
            f"at (cell, gene) {_position(matrix, first_fractional)}); preprocessing needs raw counts: "
            "name the layer that holds them (layer='counts'), or pass allow_non_integer=True for data "
            "that are already scaled (TPM, RPKM) but not logged"
        )
    return {"dtype": str(matrix.dtype), "integer": first_fractional is None, "max": maximum}


def _row_sums(matrix: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """Per-row sums in float64 (exact for integer counts below 2**53)."""
    sums = np.zeros(matrix.shape[0], dtype=np.float64)
    for start, stop, columns, values in _blocks(matrix):
        if columns is None:
            sums[start:stop] = values.sum(axis=1, dtype=np.float64)
        else:
            lengths = np.diff(matrix.indptr[start : stop + 1])
            rows = np.repeat(np.arange(stop - start), lengths)
            sums[start:stop] = np.bincount(rows, weights=values, minlength=stop - start)
    return sums


def _column_stats(matrix: np.ndarray | sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column sums (float64) and numbers of rows with a non-zero value."""
    n_cols = matrix.shape[1]
    sums = np.zeros(n_cols, dtype=np.float64)
    detected = np.zeros(n_cols, dtype=np.int64)
    for _, _, columns, values in _blocks(matrix):
        if columns is None:
            sums += values.sum(axis=0, dtype=np.float64)
            detected += (values != 0).sum(axis=0)
        else:
            sums += np.bincount(columns, weights=values, minlength=n_cols)
            detected += np.bincount(columns[values != 0], minlength=n_cols)
    return sums, detected


# --------------------------------------------------------------------------- transforms
def _size_factors(sizes: np.ndarray, dtype: np.dtype, target_sum: float | None) -> tuple[np.ndarray, float]:
    """scanpy's size factors: totals rounded to the matrix dtype, divided by the target sum; an
    empty cell gets 1 (it stays zero)."""
    sizes_typed = sizes.astype(dtype)
    if target_sum is None:
        target_sum = float(np.median(sizes_typed))
    factor = sizes_typed / dtype.type(target_sum)
    return factor + (factor == 0), float(target_sum)


def _scale_log(
    columns: np.ndarray | None, values: np.ndarray, factor: np.ndarray | None, dtype: np.dtype, lengths: np.ndarray | None
) -> np.ndarray:
    """New array: ``log1p(values / factor of the row)`` (or ``log1p(values)`` without factors),
    computed in ``dtype`` exactly as normalize_total then log1p do."""
    out = values.astype(dtype, copy=True)
    if factor is not None:
        if columns is None:
            out /= factor[:, None]
        else:
            out /= np.repeat(factor, lengths)
    np.log1p(out, out=out)
    return out


def _transform(matrix: np.ndarray | sp.csr_matrix, factor: np.ndarray | None, dtype: np.dtype) -> np.ndarray | sp.csr_matrix:
    """A new matrix ``log1p(matrix / factor)``, block by block (same sparsity pattern)."""
    if sp.issparse(matrix):
        data = np.empty(matrix.nnz, dtype=dtype)
        for start, stop, columns, values in _blocks(matrix):
            lo, hi = matrix.indptr[start], matrix.indptr[stop]
            part = None if factor is None else factor[start:stop]
            data[lo:hi] = _scale_log(columns, values, part, dtype, np.diff(matrix.indptr[start : stop + 1]))
        return sp.csr_matrix((data, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    out = np.empty(matrix.shape, dtype=dtype)
    for start, stop, _, values in _blocks(matrix):
        out[start:stop] = _scale_log(None, values, None if factor is None else factor[start:stop], dtype, None)
    return out


def normalize_total(
    matrix: Any, target_sum: float | None = 1e4, *, library_size: np.ndarray | None = None
) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray, float]:
    """Scale each cell to the same total, as ``scanpy.pp.normalize_total``; returns a new matrix.

    Parameters
    ----------
    matrix
        Counts, ``(n_cells, n_genes)``; dense or sparse (the result has the same kind).
    target_sum
        Total of every cell after scaling (1e4 by default, "counts per 10k"); ``None`` uses the
        median library size, like scanpy's ``target_sum=None``.
    library_size
        Precomputed per-cell totals (float64), to avoid summing twice.

    Returns
    -------
    normalized
        ``float32`` unless the input was ``float64``; cells with no counts stay zero.
    library_size
        Per-cell totals before scaling, ``(n_cells,)`` float64.
    target_sum
        The total used.
    """
    matrix = _as_matrix(matrix, "counts")
    dtype = _float_dtype(matrix.dtype)
    sizes = _row_sums(matrix) if library_size is None else np.asarray(library_size, dtype=np.float64)
    factor, used = _size_factors(sizes, dtype, target_sum)
    if sp.issparse(matrix):
        data = matrix.data.astype(dtype, copy=True)
        data /= np.repeat(factor, np.diff(matrix.indptr))
        normalized = sp.csr_matrix((data, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    else:
        normalized = matrix.astype(dtype, copy=True)
        normalized /= factor[:, None]
    return normalized, sizes, used


def log1p(matrix: np.ndarray | sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
    """Natural ``log(1 + x)`` of every value, in place (the stored zeros of a sparse matrix stay 0)."""
    values = _values(matrix)
    np.log1p(values, out=values)
    return matrix


def _accumulate(
    blocks: Iterator[tuple[np.ndarray | None, np.ndarray]], n_rows: int, n_cols: int, expm1: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased variance per column from ``(columns, values)`` blocks of rows."""
    sums = np.zeros(n_cols, dtype=np.float64)
    squares = np.zeros(n_cols, dtype=np.float64)
    for columns, values in blocks:
        if expm1:
            values = np.expm1(values)
        # The square is taken in the values' precision and accumulated in float64, as scanpy.
        if columns is None:
            sums += values.sum(axis=0, dtype=np.float64)
            squares += (values * values).sum(axis=0, dtype=np.float64)
        else:
            sums += np.bincount(columns, weights=values, minlength=n_cols)
            squares += np.bincount(columns, weights=values * values, minlength=n_cols)
    mean = sums / n_rows
    var = squares / n_rows - mean**2
    if n_rows > 1:
        var *= n_rows / (n_rows - 1)
    return mean, var


def mean_var(matrix: Any, *, expm1: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and unbiased variance, accumulated over blocks of rows.

    Parameters
    ----------
    matrix
        ``(n_cells, n_genes)``; sparse matrices are never densified.
    expm1
        Take ``exp(x) - 1`` of every value first (the ``seurat`` flavour undoes the log this way).

    Returns
    -------
    mean, var
        ``(n_genes,)`` float64; ``var`` uses ``ddof=1`` (R's convention, as scanpy).
    """
    matrix = _as_matrix(matrix, "matrix")
    pairs = ((columns, values) for _, _, columns, values in _blocks(matrix))
    return _accumulate(pairs, matrix.shape[0], matrix.shape[1], expm1)


# --------------------------------------------------------------------------- HVG
def highly_variable_genes(
    log_matrix: Any,
    n_top_genes: int,
    *,
    flavor: Flavor = "seurat",
    n_bins: int = 20,
    gene_names: Any = None,
) -> pd.DataFrame:
    """Highly variable genes of log-normalised data, by scanpy's dispersion-based definitions.

    ``flavor="seurat"`` (scanpy's default, Satija et al. 2015): undo the log (``expm1``), take
    each gene's mean and unbiased variance, dispersion = variance / mean, then ``log`` of the
    dispersion (zero dispersions become NaN) and ``log1p`` of the mean. Genes are put into
    ``n_bins`` equal-width bins of the log mean (``pandas.cut``); each gene's dispersion is
    z-scored within its bin (mean and ``ddof=1`` standard deviation of the bin). A bin holding a
    single gene gives that gene a normalised dispersion of 1.

    ``flavor="cell_ranger"`` (Zheng et al. 2017): mean and variance of the log data itself,
    dispersion = variance / mean, bins at the 10th, 15th, ..., 100th percentiles of the mean, and
    normalisation by the bin median and median absolute deviation (scaled to the normal, as
    ``statsmodels.robust.mad``).

    The selected genes are those whose normalised dispersion is at least the ``n_top_genes``-th
    largest; ties at the cut-off are all kept, so (rarely) more than ``n_top_genes`` genes are
    selected, exactly as scanpy does. Genes with an undefined normalised dispersion (NaN) are
    never selected.

    Parameters
    ----------
    log_matrix
        Log-normalised expression ``(n_cells, n_genes)``, dense or sparse.
    n_top_genes
        Number of genes to select.
    flavor
        ``"seurat"`` or ``"cell_ranger"``.
    n_bins
        Number of mean-expression bins (``seurat`` only; scanpy's default 20).
    gene_names
        Index of the returned table (default ``0..n_genes-1``).

    Returns
    -------
    pandas.DataFrame
        One row per gene: ``means``, ``dispersions``, ``dispersions_norm``, ``mean_bin`` (bin
        code), ``highly_variable`` (bool); ``attrs["cutoff"]`` holds the normalised-dispersion
        cut-off.
    """
    _check_flavor(flavor)
    matrix = _as_matrix(log_matrix, "log-normalised matrix")
    if isinstance(n_top_genes, bool) or not isinstance(n_top_genes, int | np.integer) or n_top_genes < 1:
        raise InputError(f"n_top_genes must be a positive integer, got {n_top_genes!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}")

    mean, var = mean_var(matrix, expm1=flavor == "seurat")
    return _select_hvg(mean, var, int(n_top_genes), flavor=flavor, n_bins=int(n_bins), gene_names=gene_names)


def _check_flavor(flavor: str) -> None:
    if flavor not in FLAVORS:
        hint = (
            " (seurat_v3 ranks raw counts with a loess fit; it is not implemented here: use "
            "scanpy.pp.highly_variable_genes directly)"
            if str(flavor).startswith("seurat_v3")
            else ""
        )
        raise InputError(f"unknown HVG flavor {flavor!r}; use one of {', '.join(FLAVORS)}{hint}")


def _select_hvg(
    mean: np.ndarray, var: np.ndarray, n_top_genes: int, *, flavor: str, n_bins: int, gene_names: Any
) -> pd.DataFrame:
    """The selection of :func:`highly_variable_genes` from per-gene mean and variance (of the
    un-logged values for ``seurat``, of the log values for ``cell_ranger``)."""
    n_genes = len(mean)
    mean = np.array(mean, dtype=np.float64)
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    if flavor == "seurat":
        dispersion[dispersion == 0] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            dispersion = np.log(dispersion)
        mean = np.log1p(mean)
        bins: Any = int(n_bins)
    else:
        bins = np.r_[-np.inf, np.percentile(mean, np.arange(10, 105, 5)), np.inf]
    try:
        mean_bin = pd.cut(pd.Series(mean), bins=bins)
    except ValueError as exc:
        raise InputError(f"cannot bin the gene means for flavor={flavor!r}: {exc}") from None
    codes = mean_bin.cat.codes.to_numpy()
    grouped = pd.Series(dispersion).groupby(codes)
    if flavor == "seurat":
        stats = grouped.agg(["mean", "std"])
        avg, dev = stats["mean"], stats["std"]
        # A bin with one gene has no standard deviation: that gene gets a normalised dispersion
        # of 1 (avg 0, dev = its own dispersion), as in Seurat and scanpy.
        single = dev.isna()
        dev = dev.where(~single, avg)
        avg = avg.where(~single, 0.0)
    else:
        from statsmodels.robust import mad

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            avg = grouped.median()
            dev = grouped.agg(mad)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = (dispersion - avg.reindex(codes).to_numpy()) / dev.reindex(codes).to_numpy()

    n_select = min(int(n_top_genes), n_genes)
    defined = norm[~np.isnan(norm)]
    if n_select > defined.size:
        warnings.warn(
            f"n_top_genes = {n_top_genes} but only {defined.size} genes have a normalised dispersion "
            "(the others do not vary); all of them are selected",
            UserWarning,
            stacklevel=3,
        )
        n_select = defined.size
    if n_select == 0:
        raise InputError("no gene varies across cells: no highly variable gene can be selected")
    cutoff = float(np.sort(defined)[::-1][n_select - 1])
    selected = np.nan_to_num(norm, nan=-np.inf) >= cutoff

    index = pd.RangeIndex(n_genes) if gene_names is None else pd.Index(gene_names)
    table = pd.DataFrame(
        {
            "means": mean,
            "dispersions": dispersion,
            "dispersions_norm": norm,
            "mean_bin": codes,
            "highly_variable": selected,
        },
        index=index,
    )
    table.attrs["cutoff"] = cutoff
    return table



# --------------------------------------------------------------------------- preprocess
def preprocess(
    adata: AnnData,
    n_top_genes: int | None = 5000,
    *,
    layer: str | None = None,
    normalize: bool = True,
    target_sum: float | None = 1e4,
    flavor: Flavor = "seurat",
    n_bins: int = 20,
    subset: bool = True,
    min_counts_per_cell: float = 1,
    min_cells_per_gene: int = 1,
    allow_non_integer: bool = False,
    dtype: Any = None,
) -> AnnData:
    """The paper's preprocessing: counts -> normalised log expression of the top variable genes.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X`` (or in ``layers[layer]``). Left unchanged.
    n_top_genes
        Number of highly variable genes (paper: 5000). ``None`` skips the selection. More than
        the number of genes keeps them all.
    layer
        Layer holding the counts (default ``X``). Data already log-transformed by topiceval or
        scanpy (``uns["log1p"]``) are refused unless a counts layer is named.
    normalize
        Library-size normalisation before ``log1p`` (default). The paper's text only names
        ``log1p``; ``normalize=False`` follows it literally (log of raw counts).
    target_sum
        Total counts of every cell after normalisation (default 1e4, "counts per 10k", the value
        most scanpy workflows pass); ``None`` uses the median library size (scanpy's default).
    flavor
        HVG definition: ``"seurat"`` (scanpy's default, what the paper ran) or ``"cell_ranger"``;
        see :func:`highly_variable_genes`.
    n_bins
        Mean-expression bins of the ``seurat`` flavour (scanpy's default 20).
    subset
        Keep only the selected genes (default, what the paper's models are trained on); with
        ``False`` every gene is kept and ``var["highly_variable"]`` marks the selection.
    min_counts_per_cell, min_cells_per_gene
        Cells with fewer total counts and genes detected in fewer cells are dropped first
        (defaults: drop empty cells and genes only), as ``scanpy.pp.filter_cells(min_counts=)``
        and ``scanpy.pp.filter_genes(min_cells=)``. Dropping cells emits a warning.
    allow_non_integer
        Accept non-integer values (TPM, RPKM); negative values are always refused.
    dtype
        Float type of the log-normalised ``X`` (default: ``float32``, or ``float64`` if the
        counts are ``float64``, as scanpy).

    Returns
    -------
    AnnData
        ``(n_kept_cells, n_selected_genes)``: ``X`` the log-normalised values (sparse if the
        counts were sparse), ``layers["counts"]`` the raw counts of the same cells and genes,
        ``obs["total_counts"]`` the library sizes over all kept genes, ``var`` with ``means``,
        ``dispersions``, ``dispersions_norm``, ``highly_variable``, ``uns["topiceval_preprocess"]``
        recording every step, and ``uns["log1p"]`` / ``uns["hvg"]`` as scanpy writes them.

    Raises
    ------
    InputError
        No counts (NaN, negative or non-integer values; already log-transformed data), an unknown
        layer or flavour, no cell or gene left after filtering.

    Notes
    -----
    Memory: the statistics are computed block by block from the counts, and only the kept cells x
    selected genes are materialised (their counts and their log values), so the peak is about the
    input plus twice the output; nothing is densified.

    Examples
    --------
    >>> from topiceval import datasets
    >>> adata = datasets.preprocess(datasets.load_default(), n_top_genes=2000)  # doctest: +SKIP
    """
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise InputError(f"preprocess needs an AnnData, got {type(adata).__name__}")
    _check_flavor(flavor)
    if n_top_genes is not None and (
        isinstance(n_top_genes, bool) or not isinstance(n_top_genes, int | np.integer) or n_top_genes < 1
    ):
        raise InputError(f"n_top_genes must be a positive integer or None, got {n_top_genes!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}")
    if target_sum is not None and not (np.isfinite(target_sum) and target_sum > 0):
        raise InputError(f"target_sum must be a positive number or None, got {target_sum!r}")
    if layer is None:
        if "log1p" in adata.uns or UNS_KEY in adata.uns:
            raise InputError(
                "adata.X is already log-transformed (uns['log1p'] is set); name the layer that "
                "holds the raw counts, e.g. layer='counts'"
            )
        source, what = adata.X, "X"
    else:
        if layer not in adata.layers:
            raise InputError(f"no layer {layer!r}; layers: {preview(adata.layers.keys()) or 'none'}")
        source, what = adata.layers[layer], f"layers[{layer!r}]"
    if source is None:
        raise InputError("adata.X is empty: nothing to preprocess")
    counts = _as_matrix(source, what)
    if counts.shape != adata.shape:
        raise InputError(f"{what} has shape {counts.shape} but adata has shape {adata.shape}")
    if 0 in counts.shape:
        raise InputError(f"{what} has shape {counts.shape}: no cells or no genes to preprocess")
    work_dtype = np.dtype(dtype) if dtype is not None else _float_dtype(counts.dtype)
    if not np.issubdtype(work_dtype, np.floating):
        raise InputError(f"dtype must be a float type, got {work_dtype}")
    facts = check_counts(counts, what=what, allow_non_integer=allow_non_integer)
    n_cells_in, n_genes_in = counts.shape
    record: dict[str, Any] = {
        "steps": ["check_counts", "filter_cells", "filter_genes"],
        "input_shape": [int(n_cells_in), int(n_genes_in)],
        "check_counts": {"source": what, **facts, "allow_non_integer": bool(allow_non_integer)},
    }

    # -- filter cells, then genes (as scanpy.pp.filter_cells / filter_genes). Rows or columns are
    # only copied out when a dropped one holds counts; empty ones are skipped by index.
    cell_totals = _row_sums(counts)
    keep_cells = (cell_totals >= min_counts_per_cell) & (cell_totals > 0)
    n_dropped = int((~keep_cells).sum())
    record["filter_cells"] = {"min_counts": float(min_counts_per_cell), "n_removed": n_dropped}
    if not keep_cells.any():
        raise InputError(f"no cell has at least {max(min_counts_per_cell, 1)} counts")
    if n_dropped:
        warnings.warn(
            f"{n_dropped} cell(s) with fewer than {max(min_counts_per_cell, 1)} counts were dropped "
            f"({preview(adata.obs_names[~keep_cells], 5)}); realign any per-cell data with the "
            "result's obs_names",
            UserWarning,
            stacklevel=2,
        )
    work = counts[keep_cells] if cell_totals[~keep_cells].any() else counts
    _, detected = _column_stats(work)
    keep_genes = detected >= max(min_cells_per_gene, 1)
    record["filter_genes"] = {
        "min_cells": int(max(min_cells_per_gene, 1)),
        "n_removed": int((~keep_genes).sum()),
    }
    if not keep_genes.any():
        raise InputError("no gene is detected in enough cells")
    if detected[~keep_genes].any():  # dropped genes with counts change the library sizes
        work = work[:, keep_genes]
        work_genes = np.ones(work.shape[1], dtype=bool)
    else:
        work_genes = keep_genes
    cell_index = np.flatnonzero(keep_cells)
    gene_index = np.flatnonzero(keep_genes)
    n_cells = len(cell_index)

    # -- library sizes and size factors, per row of `work` (which may still hold dropped empty
    # rows: their size is 0, their factor 1, and they add nothing to any statistic)
    sizes = _row_sums(work)
    row_kept = keep_cells if work.shape[0] != n_cells else np.ones(n_cells, dtype=bool)
    factor = None
    if normalize:
        used_sum = target_sum
        if used_sum is None:  # scanpy: the median over the (kept) cells, in the matrix dtype
            used_sum = float(np.median(sizes[row_kept].astype(work_dtype)))
        factor, used_sum = _size_factors(sizes, work_dtype, used_sum)
        record["steps"].append("normalize_total")
        record["normalize_total"] = {
            "target_sum": used_sum,
            "target_sum_rule": "given" if target_sum is not None else "median library size",
            "library_size": "sum over the kept genes (obs['total_counts'])",
        }
    record["steps"].append("log1p")
    record["log1p"] = {"base": "e", "dtype": str(work_dtype)}

    # -- highly variable genes, from block-wise statistics of log1p(counts / factor)
    table = None
    selected = np.ones(len(gene_index), dtype=bool)
    if n_top_genes is not None:
        expm1 = flavor == "seurat"

        def log_blocks() -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
            for start, stop, columns, values in _blocks(work):
                lengths = None if columns is None else np.diff(work.indptr[start : stop + 1])
                part = None if factor is None else factor[start:stop]
                yield columns, _scale_log(columns, values, part, work_dtype, lengths)

        mean, var = _accumulate(log_blocks(), n_cells, work.shape[1], expm1)
        table = _select_hvg(
            mean[work_genes], var[work_genes], int(n_top_genes), flavor=flavor, n_bins=int(n_bins),
            gene_names=adata.var_names[gene_index],
        )
        selected = table["highly_variable"].to_numpy()
        record["steps"].append("highly_variable_genes")
        record["highly_variable_genes"] = {
            "flavor": flavor,
            "n_top_genes": int(n_top_genes),
            "n_bins": int(n_bins),
            "n_selected": int(selected.sum()),
            "cutoff": table.attrs["cutoff"],
            "definition": f"scanpy.pp.highly_variable_genes(flavor={flavor!r}) on log1p data",
        }
        if subset:
            record["steps"].append("subset_genes")
            record["subset_genes"] = {"n_genes": int(selected.sum())}

    # -- the result: the kept cells x genes copied once from the input (the input is never
    # modified); their counts become layers["counts"] and their log values X.
    keep = selected if (table is not None and subset) else np.ones(len(gene_index), dtype=bool)
    final_genes = gene_index[keep]
    rows = slice(None) if n_cells == n_cells_in else cell_index
    out = adata[rows, final_genes].copy()
    counts_layer = "counts" if layer is None else str(layer)
    if layer is None:
        out.layers["counts"] = out.X
    elif layer != "counts":
        out.layers["counts"] = out.layers[layer]
    out_counts = _as_matrix(out.layers["counts"], "counts")
    out.X = _transform(out_counts, None if factor is None else factor[row_kept], work_dtype)
    out.obs["total_counts"] = sizes[row_kept]
    if table is not None:
        part = table.iloc[np.flatnonzero(keep)]
        for column in ("means", "dispersions", "dispersions_norm", "highly_variable"):
            out.var[column] = part[column].to_numpy()
        out.uns["hvg"] = {"flavor": flavor}
    out.uns["log1p"] = {"base": None}
    record["output_shape"] = [int(out.n_obs), int(out.n_vars)]
    record["counts_layer"] = counts_layer
    record["topiceval_version"] = _version()
    out.uns[UNS_KEY] = record
    return out


def _version() -> str:
    try:
        return version("topiceval")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
