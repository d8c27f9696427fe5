"""topiceval.datasets.preprocess: the paper's preprocessing, checked against scanpy on real data
and against hand-worked numbers, plus its records and its refusals."""

from __future__ import annotations

import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scanpy as sc  # in the test extra
import scipy.sparse as sp
from tolerances import EPS32

from topiceval import datasets as ds
from topiceval.errors import InputError


@pytest.fixture(scope="module")
def real(shared_data):
    return {name: ds.load_dataset(name, data_dir=shared_data) for name in ("pollen", "darmanis", "kang_pbmc", "ting")}


def scanpy_pipeline(adata, n_top_genes, *, flavor="seurat", normalize=True, target_sum=1e4, min_counts=1, min_cells=1):
    """The same steps with scanpy: drop empty cells and genes, normalise, log1p, HVG."""
    b = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.filter_cells(b, min_counts=min_counts)
        sc.pp.filter_genes(b, min_cells=min_cells)
        if normalize:
            sc.pp.normalize_total(b, target_sum=target_sum)
        sc.pp.log1p(b)
        sc.pp.highly_variable_genes(b, n_top_genes=n_top_genes, flavor=flavor)
    return b


def assert_matches_scanpy(ours, ref):
    assert list(ours.obs_names) == list(ref.obs_names)
    assert list(ours.var_names) == list(ref.var_names)
    assert ours.X.dtype == ref.X.dtype
    # normalisation and log1p are bitwise identical
    assert sp.issparse(ours.X) == sp.issparse(ref.X)
    diff = ours.X - ref.X
    assert (diff.nnz if sp.issparse(diff) else np.count_nonzero(diff)) == 0
    # the selected genes are exactly scanpy's
    np.testing.assert_array_equal(ours.var["highly_variable"].to_numpy(), ref.var["highly_variable"].to_numpy())
    np.testing.assert_allclose(ours.var["means"], ref.var["means"], rtol=1e-12)
    np.testing.assert_allclose(ours.var["dispersions"], ref.var["dispersions"], rtol=1e-10)
    # scanpy stores the normalised dispersion as float32
    np.testing.assert_allclose(ours.var["dispersions_norm"], ref.var["dispersions_norm"], rtol=EPS32, atol=EPS32)


@pytest.mark.parametrize(
    ("name", "flavor", "n_top"),
    [
        ("pollen", "seurat", 5000),
        ("darmanis", "seurat", 5000),
        ("kang_pbmc", "seurat", 500),
        ("ting", "seurat", 2000),
        ("pollen", "cell_ranger", 2000),
        ("kang_pbmc", "cell_ranger", 300),
    ],
)
def test_matches_scanpy_on_real_data(real, name, flavor, n_top):
    adata = real[name]
    ours = ds.preprocess(adata, n_top_genes=n_top, flavor=flavor, subset=False)
    ref = scanpy_pipeline(adata, n_top, flavor=flavor)
    assert_matches_scanpy(ours, ref)
    assert int(ours.var["highly_variable"].sum()) == n_top
    assert ours.uns["hvg"] == {"flavor": flavor}


def test_options_match_scanpy(real):
    adata = real["kang_pbmc"]
    # the paper's literal text: log1p of the raw counts, no normalisation
    assert_matches_scanpy(ds.preprocess(adata, 400, normalize=False, subset=False), scanpy_pipeline(adata, 400, normalize=False))
    # target_sum=None: the median library size, as scanpy's default
    ours = ds.preprocess(adata, 400, target_sum=None, subset=False)
    assert_matches_scanpy(ours, scanpy_pipeline(adata, 400, target_sum=None))
    median = float(np.median(np.asarray(adata.X.sum(axis=1)).ravel().astype(np.float32)))
    assert ours.uns["topiceval_preprocess"]["normalize_total"]["target_sum"] == pytest.approx(median)


def test_dense_and_integer_input_match_scanpy(real):
    adata = real["kang_pbmc"][:600].copy()
    dense = anndata.AnnData(X=adata.X.toarray(), obs=adata.obs.copy(), var=adata.var.copy())
    ours = ds.preprocess(dense, 300, subset=False)
    assert isinstance(ours.X, np.ndarray) and ours.X.dtype == np.float32
    ref = scanpy_pipeline(dense, 300)
    np.testing.assert_array_equal(ours.var["highly_variable"], ref.var["highly_variable"])
    np.testing.assert_allclose(ours.X, ref.X, rtol=1e-6)
    integer = anndata.AnnData(X=sp.csr_matrix(adata.X, dtype=np.int64), obs=adata.obs.copy(), var=adata.var.copy())
    ours_int = ds.preprocess(integer, 300, subset=False)
    assert ours_int.X.dtype == np.float32 and ours_int.layers["counts"].dtype == np.int64
    np.testing.assert_array_equal(ours_int.var["highly_variable"], ref.var["highly_variable"])


def test_hvg_by_hand():
    """A 6-cell x 5-gene example worked with the definition in the docstring (seurat flavour):
    two bins of log mean; gene D (never detected) has no dispersion, so a bin's z-scores use the
    other genes only."""
    log_x = np.log1p(
        np.array(
            [
                [0, 1, 5, 0, 0],
                [0, 2, 0, 0, 1],
                [3, 1, 5, 0, 0],
                [0, 0, 0, 0, 2],
                [9, 1, 6, 0, 0],
                [0, 3, 0, 0, 1],
            ],
            dtype=np.float64,
        )
    )
    table = ds.highly_variable_genes(sp.csr_matrix(log_x), 2, n_bins=2, gene_names=list("ABCDE"))
    x = np.expm1(log_x)
    mean, var = x.mean(axis=0), x.var(axis=0, ddof=1)
    mean[3] = 1e-12  # gene D is never detected: mean 0 -> 1e-12, dispersion 0 -> NaN
    with np.errstate(divide="ignore"):
        dispersion = np.log(var / mean)
    dispersion[3] = np.nan
    log_mean = np.log1p(mean)
    edges = np.linspace(log_mean.min(), log_mean.max(), 3)
    low = log_mean <= edges[1]
    expected = np.full(5, np.nan)
    for members in (low, ~low):
        values = dispersion[members]
        defined = values[~np.isnan(values)]
        if len(defined) == 1:
            expected[members] = np.where(np.isnan(values), np.nan, 1.0)
        else:
            expected[members] = (values - defined.mean()) / defined.std(ddof=1)
    np.testing.assert_allclose(table["means"], log_mean)
    np.testing.assert_allclose(table["dispersions_norm"], expected)
    top2 = np.argsort(-np.nan_to_num(expected, nan=-np.inf))[:2]
    assert set(table.index[table["highly_variable"]]) == set(np.array(list("ABCDE"))[top2])
    assert not table.loc["D", "highly_variable"]


def test_ties_at_the_cutoff_are_all_kept_like_scanpy():
    """Genes with identical statistics tie; scanpy keeps every gene at the cut-off, and so do we."""
    rng = np.random.default_rng(3)
    base = rng.poisson(2.0, size=(40, 6)).astype(np.float32)
    counts = np.hstack([base, base[:, :3], rng.poisson(1.0, size=(40, 20)).astype(np.float32)])
    adata = anndata.AnnData(X=sp.csr_matrix(counts), var=pd.DataFrame(index=[f"g{i}" for i in range(counts.shape[1])]))
    for n_top in range(1, 12):
        ours = ds.preprocess(adata, n_top, subset=False, normalize=False)
        ref = scanpy_pipeline(adata, n_top, normalize=False)
        np.testing.assert_array_equal(ours.var["highly_variable"], ref.var["highly_variable"])
    assert any(
        ds.preprocess(adata, n, subset=False, normalize=False).var["highly_variable"].sum() > n for n in range(1, 12)
    )


def test_result_layout_and_record(full_shared_data):
    adata = ds.load_dataset("pollen", data_dir=full_shared_data)
    before = adata.X.copy()
    out = ds.preprocess(adata, n_top_genes=3000)
    # the input is untouched
    assert (adata.X != before).nnz == 0 and "counts" not in adata.layers
    assert out.shape == (299, 3000) and sp.isspmatrix_csr(out.X) and out.X.dtype == np.float32
    counts = out.layers["counts"]
    assert sp.issparse(counts)
    # layers["counts"] are the raw counts of the kept genes, X their normalised log
    ref = adata[:, out.var_names].X
    assert (counts != ref).nnz == 0
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    np.testing.assert_allclose(out.obs["total_counts"], totals)
    expected = np.log1p(counts.toarray() / totals[:, None].astype(np.float32) * np.float32(1e4))
    np.testing.assert_allclose(out.X.toarray(), expected, rtol=1e-5, atol=1e-6)
    rec = out.uns["topiceval_preprocess"]
    assert rec["steps"] == [
        "check_counts", "filter_cells", "filter_genes", "normalize_total", "log1p", "highly_variable_genes", "subset_genes",
    ]
    assert rec["input_shape"] == [299, 23794] and rec["output_shape"] == [299, 3000]
    assert rec["filter_genes"]["n_removed"] == 23794 - 21471  # genes with no count in any cell
    assert rec["highly_variable_genes"]["n_selected"] == 3000
    assert rec["normalize_total"]["target_sum"] == 1e4
    assert rec["check_counts"]["integer"] is True
    assert out.var["highly_variable"].all()
    assert out.obs["cell_type"].equals(adata.obs["cell_type"])


def test_h5ad_round_trip_and_second_run(real, tmp_path):
    out = ds.preprocess(real["kang_pbmc"], n_top_genes=500)
    path = tmp_path / "pre.h5ad"
    out.write_h5ad(path)
    back = anndata.read_h5ad(path)
    assert back.uns["topiceval_preprocess"]["steps"][-1] == "subset_genes"
    assert (back.X != out.X).nnz == 0
    # preprocessing the result again needs the counts layer, and gives the same genes
    with pytest.raises(InputError, match="already log-transformed.*layer='counts'"):
        ds.preprocess(back, n_top_genes=200)
    again = ds.preprocess(back, n_top_genes=500, layer="counts")
    assert (again.layers["counts"] != out.layers["counts"]).nnz == 0


def test_empty_cells_and_genes_are_dropped_with_a_warning():
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.5, size=(30, 12)).astype(np.float32)
    counts[[4, 17]] = 0
    counts[:, 5] = 0
    adata = anndata.AnnData(X=sp.csr_matrix(counts), obs=pd.DataFrame(index=[f"c{i}" for i in range(30)]))
    with pytest.warns(UserWarning, match="2 cell.*dropped.*c4, c17"):
        out = ds.preprocess(adata, n_top_genes=None)
    assert out.shape == (28, 11) and "c4" not in out.obs_names
    assert out.uns["topiceval_preprocess"]["filter_cells"]["n_removed"] == 2
    assert out.uns["topiceval_preprocess"]["filter_genes"]["n_removed"] == 1
    assert "highly_variable_genes" not in out.uns["topiceval_preprocess"]["steps"]


def test_filters_match_scanpy(real):
    """Dropping non-empty cells and genes (rows and columns copied out) and empty cells (skipped
    by index, the median over the kept cells) give scanpy's numbers."""
    adata = real["pollen"][:, :6000].copy()
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    threshold = float(np.quantile(totals, 0.2))
    with pytest.warns(UserWarning, match="dropped"):
        ours = ds.preprocess(adata, 1000, subset=False, min_counts_per_cell=threshold, min_cells_per_gene=5, target_sum=None)
    ref = scanpy_pipeline(adata, 1000, min_counts=threshold, min_cells=5, target_sum=None)
    assert_matches_scanpy(ours, ref)
    assert ours.n_obs < adata.n_obs and ours.uns["topiceval_preprocess"]["filter_genes"]["n_removed"] > 0
    matrix = sp.vstack([adata.X[:50], sp.csr_matrix((3, adata.n_vars), dtype=np.float32), adata.X[50:]], format="csr")
    empty = anndata.AnnData(X=matrix, var=adata.var.copy())
    with pytest.warns(UserWarning, match="3 cell"):
        ours = ds.preprocess(empty, 1000, subset=False, target_sum=None)
    assert_matches_scanpy(ours, scanpy_pipeline(empty, 1000, target_sum=None))


def test_more_top_genes_than_genes_keeps_all(real):
    out = ds.preprocess(real["kang_pbmc"], n_top_genes=5000)
    assert out.n_vars == 1267


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([[1.0, -2.0], [3.0, 4.0]]), r"negative value.*-2\.0 at \(cell, gene\) \(0, 1\).*raw counts"),
        (np.array([[1.0, 2.5], [3.0, 4.0]]), r"non-integer value.*2\.5 at \(cell, gene\) \(0, 1\).*layer='counts'"),
        (np.array([[1.0, 2.0], [np.nan, 4.0]]), r"1 NaN .*\(1, 0\)"),
        (np.array([[1.0, np.inf], [3.0, 4.0]]), r"infinite"),
    ],
)
def test_bad_counts_are_refused(values, message):
    for matrix in (values, sp.csr_matrix(values)):
        with pytest.raises(InputError, match=message):
            ds.preprocess(anndata.AnnData(X=matrix), n_top_genes=1)


def test_non_integer_allowed_on_request(shared_data):
    yan = ds.load_dataset("yan", data_dir=shared_data)  # log-scaled RPKM
    with pytest.raises(InputError, match="non-integer"):
        ds.preprocess(yan)
    out = ds.preprocess(yan, n_top_genes=1000, allow_non_integer=True)
    assert out.n_vars == 1000 and out.uns["topiceval_preprocess"]["check_counts"]["integer"] is False


def test_other_refusals(real):
    adata = real["kang_pbmc"]
    with pytest.raises(InputError, match="no layer 'raw'"):
        ds.preprocess(adata, layer="raw")
    with pytest.raises(InputError, match="unknown HVG flavor 'seurat_v3'.*loess"):
        ds.preprocess(adata, flavor="seurat_v3")
    with pytest.raises(InputError, match="n_top_genes must be a positive integer"):
        ds.preprocess(adata, n_top_genes=0)
    with pytest.raises(InputError, match="target_sum"):
        ds.preprocess(adata, target_sum=-1)
    with pytest.raises(InputError, match="needs an AnnData"):
        ds.preprocess(adata.X)
    with pytest.raises(InputError, match="no cell has"):
        ds.preprocess(anndata.AnnData(X=sp.csr_matrix((3, 4), dtype=np.float32)))


def test_sparse_statistics_match_dense(real, rng):
    matrix = real["darmanis"].X[:, :3000]
    mean, var = ds.mean_var(matrix, expm1=False)
    dense = matrix.toarray().astype(np.float64)
    np.testing.assert_allclose(mean, dense.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, dense.var(axis=0, ddof=1), rtol=1e-6, atol=1e-6)


def test_same_input_same_output(real):
    a = ds.preprocess(real["ting"], n_top_genes=1000)
    b = ds.preprocess(real["ting"], n_top_genes=1000)
    assert list(a.var_names) == list(b.var_names) and (a.X != b.X).nnz == 0
