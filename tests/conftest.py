"""Shared fixtures: the real data the suite reads, and the shipped collections.

The suite runs from a clone alone. ``shared_data`` is a folder with the layout of the project's
shared data folder (``../shared/data``), rebuilt once per session in a temporary folder from the
cuts shipped in ``tests/data/shared`` (made by ``scripts/make_test_data.py``; its MANIFEST.md says
what each holds) and the collections the package ships. ``$TOPICEVAL_SHARED_DATA`` points at it
for the whole session, so library code that looks for the shared folder finds the same files.

A test that needs what only the whole shared folder holds asks for ``full_shared_data`` instead:
it is marked ``full_data`` and skipped, with the reason, where that folder is absent (it is found
at ``$TOPICEVAL_SHARED_DATA`` as set before the session, else ``../shared/data`` beside the
repository, as in CI).
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topiceval.gene_sets import SHIPPED, GeneSets, load, read_gmt

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DATA = REPO / "tests" / "data" / "shared"
ENV_VAR = "TOPICEVAL_SHARED_DATA"
#: The whole shared data folder, or None; read before the session sets ``$TOPICEVAL_SHARED_DATA``.
_ENV_BEFORE = os.environ.get(ENV_VAR)


def full_shared_data_dir() -> Path | None:
    """The whole shared data folder (``$TOPICEVAL_SHARED_DATA``, else beside the repository)."""
    path = Path(_ENV_BEFORE) if _ENV_BEFORE else REPO.parent / "shared" / "data"
    return path if (path / "gene_sets").is_dir() and (path / "datasets").is_dir() else None


def build_shipped_data(folder: Path) -> Path:
    """Rebuild the shared folder's layout under ``folder`` from ``tests/data/shared``."""
    if not (SHIPPED_DATA / "MANIFEST.md").is_file():
        raise RuntimeError(f"the shipped test data {SHIPPED_DATA} is missing: run scripts/make_test_data.py")
    for source in sorted(SHIPPED_DATA.rglob("*")):
        rel = source.relative_to(SHIPPED_DATA)
        if not source.is_file() or rel.name == "MANIFEST.md":
            continue
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".xz":
            target.with_suffix("").write_bytes(lzma.decompress(source.read_bytes()))
        else:
            shutil.copyfile(source, target)
    for collection in SHIPPED.values():  # the same bytes as the shared files (test_gene_sets checks)
        target = folder / "gene_sets" / collection.file.removesuffix(".gz")
        target.write_bytes(gzip.decompress(collection.path.read_bytes()))
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "full_shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.full_data)


@pytest.fixture(scope="session", autouse=True)
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared folder's layout, rebuilt from the shipped cuts; ``$TOPICEVAL_SHARED_DATA`` too."""
    path = build_shipped_data(tmp_path_factory.mktemp("shipped") / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, str(path))
        yield path


@pytest.fixture(scope="session")
def full_shared_data() -> Path:
    """The whole shared data folder; the test is skipped where it is absent."""
    path = full_shared_data_dir()
    if path is None:
        pytest.skip(
            "needs the whole shared data folder (../shared/data beside the repository, or "
            f"${ENV_VAR}), which is not here; tests/data/shared holds only cuts of it"
        )
    return path


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
