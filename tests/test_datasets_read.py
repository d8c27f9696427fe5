"""topiceval.datasets.read: h5ad, 10x mtx folders and dense tables of real data, and bad input."""

from __future__ import annotations

import gzip
import io
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from topiceval import datasets as ds
from topiceval.errors import InputError


@pytest.fixture(scope="module")
def kang(shared_data):
    return ds.load_dataset("kang_pbmc", data_dir=shared_data)


@pytest.fixture(scope="module")
def small(kang):
    """300 real PBMCs x the 1267 genes, as a plain AnnData (counts)."""
    sub = kang[::5].copy()
    return anndata.AnnData(X=sub.X.copy(), obs=sub.obs[["cell_type"]].copy(), var=pd.DataFrame(index=sub.var_names.copy()))


def fake_ids(n):
    return [f"ENSG{i:011d}" for i in range(n)]


def write_10x(folder, adata, *, version=3, extra_feature=False, gz=True):
    folder.mkdir()
    matrix = sp.coo_matrix(adata.X.T.astype(np.int64))
    names = list(adata.var_names)
    ids = fake_ids(len(names))
    rows = [f"{i}\t{n}\tGene Expression" if version == 3 else f"{i}\t{n}" for i, n in zip(ids, names, strict=True)]
    if extra_feature:
        matrix = sp.vstack([matrix, sp.coo_matrix(np.ones((1, adata.n_obs), dtype=np.int64))]).tocoo()
        rows.append("CD3_TotalSeqB\tCD3\tAntibody Capture")
    suffix = ".gz" if gz else ""
    buffer = io.BytesIO()
    scipy.io.mmwrite(buffer, matrix)
    files = {
        "matrix.mtx": buffer.getvalue(),
        "features.tsv" if version == 3 else "genes.tsv": ("\n".join(rows) + "\n").encode(),
        "barcodes.tsv": ("\n".join(adata.obs_names) + "\n").encode(),
    }
    for name, payload in files.items():
        (folder / f"{name}{suffix}").write_bytes(gzip.compress(payload) if gz else payload)


def test_h5ad_with_labels(full_shared_data):
    adata = ds.read(full_shared_data / "datasets" / "ting" / "ting.h5ad", label_key="cell_type")
    assert adata.shape == (149, 21677)
    assert adata.obs["cell_type"].value_counts()["CTC_cluster3"] == 41
    assert ds.label_key_of(adata) == "cell_type"
    with pytest.raises(InputError, match=r"no obs column 'celltype'.*cell_type, cluster_id"):
        ds.read(full_shared_data / "datasets" / "ting" / "ting.h5ad", label_key="celltype")


@pytest.mark.parametrize(("version", "gz"), [(3, True), (2, False)])
def test_10x_folder_matches_scanpy(tmp_path, small, version, gz):
    import scanpy as sc  # the test extra installs it
    folder = tmp_path / "mtx"
    write_10x(folder, small, version=version, extra_feature=version == 3, gz=gz)
    adata = ds.read(folder)
    assert adata.shape == small.shape and sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert (adata.X != small.X).nnz == 0
    assert list(adata.var_names) == list(small.var_names)
    assert list(adata.var["gene_ids"]) == fake_ids(small.n_vars)
    assert list(adata.obs_names) == list(small.obs_names)
    if version == 3:
        assert adata.uns["topiceval_read"]["n_non_gene_features_dropped"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sc.read_10x_mtx(folder)
    assert (ref.X != adata.X).nnz == 0 and list(ref.var_names) == list(adata.var_names)
    # the matrix file itself is accepted too
    assert ds.read(folder / ("matrix.mtx.gz" if gz else "matrix.mtx")).shape == small.shape


def test_10x_folder_missing_files(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "matrix.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n1 1 0\n")
    with pytest.raises(InputError, match=r"not a 10x mtx folder.*barcodes.tsv.*holds: matrix.mtx"):
        ds.read(folder)


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz", ".txt"])
def test_table_both_orientations_detected(tmp_path, small, suffix):
    small = small[:100].copy()
    frame = pd.DataFrame(small.X.toarray(), index=small.obs_names, columns=small.var_names)
    sep = "," if suffix in (".csv", ".txt") else "\t"
    for name, table, expected in (("cells", frame, "cells_by_genes"), ("genes", frame.T, "genes_by_cells")):
        path = tmp_path / f"{name}{suffix}"
        table.to_csv(path, sep=sep)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            adata = ds.read(path)
        assert adata.shape == small.shape
        assert (adata.X != small.X).nnz == 0
        assert list(adata.var_names) == list(small.var_names)
        assert adata.uns["topiceval_read"]["orientation"] == expected
        assert adata.uns["topiceval_read"]["orientation_source"] == "detected"


def test_real_yan_table(shared_data):
    adata = ds.read(shared_data / "datasets" / "yan" / "yan_HIGHPRE.csv")
    assert adata.shape == (90, 4656) and adata.obs_names[0] == "Oocyte..1.RPKM."
    frame = pd.read_csv(shared_data / "datasets" / "yan" / "yan_HIGHPRE.csv", index_col=0)
    np.testing.assert_array_equal(adata.X.toarray(), frame.to_numpy(dtype=np.float32))
    assert adata.uns["topiceval_read"]["orientation"] == "cells_by_genes"


def test_table_orientation_needs_confirmation_when_names_do_not_tell(tmp_path, rng):
    frame = pd.DataFrame(rng.poisson(2, size=(5, 4)), index=[f"sample_{i}" for i in range(5)], columns=[f"feature_{i}" for i in range(4)])
    frame.to_csv(tmp_path / "plain.csv")
    with pytest.raises(InputError, match=r"cannot tell.*orientation='cells_by_genes' or orientation='genes_by_cells'"):
        ds.read(tmp_path / "plain.csv")
    adata = ds.read(tmp_path / "plain.csv", orientation="genes_by_cells")
    assert adata.shape == (4, 5) and list(adata.var_names) == list(frame.index)
    assert adata.uns["topiceval_read"]["orientation_source"] == "given"


def test_explicit_orientation_against_the_names_warns(tmp_path, small):
    frame = pd.DataFrame(small.X[:20].toarray(), index=small.obs_names[:20], columns=small.var_names)
    frame.to_csv(tmp_path / "t.csv")
    with pytest.warns(UserWarning, match="suggest 'cells_by_genes'"):
        adata = ds.read(tmp_path / "t.csv", orientation="genes_by_cells")
    assert adata.shape == (small.n_vars, 20)
    with pytest.raises(InputError, match="unknown orientation"):
        ds.read(tmp_path / "t.csv", orientation="rows")


def test_table_with_nan_or_text(tmp_path, small):
    frame = pd.DataFrame(small.X[:10].toarray(), index=small.obs_names[:10], columns=small.var_names)
    frame.iloc[3, 7] = np.nan
    frame.to_csv(tmp_path / "nan.csv")
    with pytest.raises(InputError, match=r"1 NaN.*\(3, 7\)"):
        ds.read(tmp_path / "nan.csv")
    frame.iloc[3, 7] = 1.0
    frame = frame.astype(object)
    frame.iloc[2, 5] = "high"
    frame.to_csv(tmp_path / "text.csv")
    with pytest.raises(InputError, match="non-numeric"):
        ds.read(tmp_path / "text.csv")


def test_ensembl_names_need_a_symbol_column(tmp_path, small):
    adata = small.copy()
    adata.var["symbol"] = list(adata.var_names)
    adata.var["chromosome"] = pd.Categorical(["1"] * adata.n_vars)
    adata.var_names = fake_ids(adata.n_vars)
    path = tmp_path / "ens.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(InputError, match=r"Ensembl IDs \(1267 of 1267.*symbol_key=.*symbol, chromosome"):
        ds.read(path)
    with pytest.raises(InputError, match="no var column 'gene_symbol'.*symbol, chromosome"):
        ds.read(path, symbol_key="gene_symbol")
    fixed = ds.read(path, symbol_key="symbol")
    assert list(fixed.var_names) == list(small.var_names)
    assert list(fixed.var["gene_ids"]) == fake_ids(small.n_vars)


def test_missing_symbols_keep_their_ids(small):
    adata = small[:, :5].copy()
    adata.var["symbol"] = ["CD3E", None, "MS4A1", "", "LYZ"]
    with pytest.warns(UserWarning, match="2 gene.*no symbol"):
        ds.standardize(adata, symbol_key="symbol")
    assert list(adata.var_names[[0, 2, 4]]) == ["CD3E", "MS4A1", "LYZ"]
    assert list(adata.var_names[[1, 3]]) == list(small.var_names[[1, 3]])


def test_duplicate_genes_made_unique_with_a_warning(tmp_path, small):
    adata = small[:, :6].copy()
    adata.var_names = ["CD3E", "LYZ", "CD3E", "MS4A1", "LYZ", "CD3E"]
    with pytest.warns(UserWarning, match=r"2 gene name\(s\) occur more than once \(CD3E, LYZ\)"):
        ds.standardize(adata)
    assert list(adata.var_names) == ["CD3E", "LYZ", "CD3E-1", "MS4A1", "LYZ-1", "CD3E-2"]
    assert adata.uns["topiceval_read"]["n_duplicate_genes"] == 2


def test_duplicate_genes_in_a_table_header(tmp_path, small):
    frame = pd.DataFrame(small.X[:20, :5].toarray(), index=small.obs_names[:20], columns=["CD3E", "LYZ", "CD3E", "MS4A1", "CD74"])
    frame.to_csv(tmp_path / "dup.csv")
    with pytest.warns(UserWarning, match=r"1 gene name\(s\) occur more than once \(CD3E\)"):
        adata = ds.read(tmp_path / "dup.csv")
    assert list(adata.var_names) == ["CD3E", "LYZ", "CD3E-1", "MS4A1", "CD74"]


def test_nan_in_h5ad_is_refused(tmp_path, small):
    adata = small.copy()
    adata.X = adata.X.astype(np.float32)
    adata.X.data[10] = np.nan
    adata.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(InputError, match="X holds 1 NaN"):
        ds.read(tmp_path / "nan.h5ad")


def test_external_labels(tmp_path, small):
    labels = [str(v) for v in small.obs["cell_type"]]
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    adata = ds.standardize(small.copy(), labels=tmp_path / "labels.txt", label_key="truth")
    assert list(adata.obs["truth"]) == labels and ds.label_key_of(adata) == "truth"
    with pytest.raises(InputError, match="3 labels were given for 312 cells"):
        ds.standardize(small.copy(), labels=["a", "b", "c"])


def test_unknown_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ds.read(tmp_path / "absent.h5ad")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InputError, match="unknown expression format"):
        ds.read(tmp_path / "data.xlsx")
    (tmp_path / "bad.h5ad").write_text("not hdf5")
    with pytest.raises(InputError, match="cannot read h5ad"):
        ds.read(tmp_path / "bad.h5ad")
