"""Shared fixtures: real data from ../shared/data and the shipped collections.

The real datasets live beside the repository (``../shared/data``, as in CI); set
``TOPICEVAL_SHARED_DATA`` to point elsewhere. A missing folder is an error, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topiceval.gene_sets import GeneSets, load, read_gmt

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("TOPICEVAL_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not (path / "gene_sets").is_dir():
        raise RuntimeError(
            f"real test data not found at {path}: the tests need ../shared/data beside the "
            "repository (or TOPICEVAL_SHARED_DATA)"
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session")
def yan_genes(shared_data: Path) -> np.ndarray:
    """The 4656 gene symbols of the Yan et al. 2013 dataset (header of its CSV)."""
    header = (shared_data / "datasets" / "yan" / "yan_HIGHPRE.csv").open().readline()
    return np.array(header.rstrip("\n").split(",")[1:], dtype=object)


@pytest.fixture(scope="session")
def yan_labels(shared_data: Path) -> np.ndarray:
    table = pd.read_csv(shared_data / "datasets" / "yan" / "yan_cell_anno.csv", index_col=0)
    return table.iloc[:, 0].to_numpy(dtype=object)


@pytest.fixture(scope="session")
def c2(shared_data: Path) -> GeneSets:
    return read_gmt(shared_data / "gene_sets" / "c2.all.v7.1.symbols.gmt")


@pytest.fixture(scope="session")
def reactome() -> GeneSets:
    return load("reactome")


@pytest.fixture(scope="session")
def hallmark() -> GeneSets:
    return load("hallmark")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
