"""Where the shared data folder is found, and the test data the suite ships (tests/data/shared)."""

from __future__ import annotations

import hashlib
import importlib.util
import lzma
import os
import subprocess
from pathlib import Path

import anndata
import pytest
from conftest import REPO, SHIPPED_DATA
from test_layout import copy_repo, make_env, pip_install

from topiceval import datasets as ds
from topiceval.errors import InputError

FIND = (
    "from topiceval.datasets import registry as r; print(r.shared_data_dir()); "
    "print([w for w, p in r._candidates(None)][0])"
)


@pytest.mark.slow
def test_regular_install_finds_the_folder_beside_the_repository_it_came_from(tmp_path, tmp_path_factory):
    """``pip install .`` (not editable) puts the package in site-packages: the folder beside the
    repository is still found (through pip's direct_url.json), from any working directory."""
    source = copy_repo(tmp_path)
    beside = tmp_path / "shared" / "data"
    (beside / "datasets").mkdir(parents=True)
    python = make_env(tmp_path)
    pip_install(python, str(source))
    env = {k: v for k, v in os.environ.items() if k != "TOPICEVAL_SHARED_DATA"}

    def find(cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-c", FIND], capture_output=True, text=True, cwd=cwd, env=env, check=False)

    result = find(tmp_path_factory.mktemp("elsewhere"))  # no shared/data in it or above it
    assert result.returncode == 0, result.stderr
    found, where = result.stdout.split("\n")[:2]
    assert Path(found) == beside and where == "beside the repository it was installed from"
    # without it, shared/data in the working directory or a folder above it
    (beside / "datasets").rmdir()
    (tmp_path / "work" / "shared" / "data" / "datasets").mkdir(parents=True)
    (tmp_path / "work" / "sub").mkdir()
    result = find(tmp_path / "work" / "sub")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.split("\n")[0]) == tmp_path / "work" / "shared" / "data"
    result = find(source / "benchmarks")
    assert result.returncode == 1
    assert "beside the repository it was installed from" in result.stderr and "or a folder above it" in result.stderr


def test_working_directory_and_its_parents_are_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("TOPICEVAL_SHARED_DATA")
    monkeypatch.setattr(ds.registry, "_source_checkout", lambda: None)
    monkeypatch.setattr(ds.registry, "_installed_from", lambda: None)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    with pytest.raises(InputError, match=r"or a folder above it"):
        ds.shared_data_dir()
    (tmp_path / "shared" / "data" / "datasets").mkdir(parents=True)
    assert ds.shared_data_dir() == tmp_path / "shared" / "data"


def test_shipped_data_layout(shared_data):
    """Every file the tests read has the shared folder's name; the whole files are the same bytes."""
    manifest = (SHIPPED_DATA / "MANIFEST.md").read_text()
    for rel in ("gene_sets/c2.all.v7.1.symbols.gmt", "datasets/yan/yan_HIGHPRE.csv",
                "datasets/wang/wang_scgpt_embedding.csv", "gene_sets/h.all.v7.1.symbols.gmt"):
        assert (shared_data / rel).is_file(), rel
    c2 = lzma.decompress((SHIPPED_DATA / "gene_sets" / "c2.all.v7.1.symbols.gmt.xz").read_bytes())
    assert hashlib.sha256(c2).hexdigest()[:16] in manifest  # the whole file, as in the shared folder
    pollen = anndata.read_h5ad(shared_data / "datasets" / "pollen" / "pollen.h5ad")
    assert pollen.shape == (299, 7932) and pollen.obs["cell_type"].nunique() == 11
    assert os.environ["TOPICEVAL_SHARED_DATA"] == str(shared_data)
    assert ds.load_dataset("kang_pbmc").shape == (1556, 1267)  # library code finds the same folder


@pytest.mark.slow
def test_shipped_data_is_what_the_script_cuts(full_shared_data, tmp_path):
    """scripts/make_test_data.py rebuilds every shipped file, byte for byte, from the shared folder."""
    spec = importlib.util.spec_from_file_location("make_test_data", REPO / "scripts" / "make_test_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(full_shared_data, tmp_path / "shared")
    made = sorted(p.relative_to(tmp_path / "shared") for p in (tmp_path / "shared").rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(SHIPPED_DATA) for p in SHIPPED_DATA.rglob("*") if p.is_file())
    assert made == shipped
    for rel in made:
        assert (tmp_path / "shared" / rel).read_bytes() == (SHIPPED_DATA / rel).read_bytes(), rel
