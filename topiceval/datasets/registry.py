"""The labelled datasets of the project's shared data folder, and the embedded default dataset.

:data:`DATASETS` describes each dataset of ``shared/data/datasets`` (see ``MANIFEST.md`` and
``MANIFEST-datasets.md`` there): species, label column, citation, licence and file(s).
:func:`load_dataset` reads one into AnnData. The folder (the one holding ``datasets/``) is found,
in order, at the ``data_dir`` argument, ``$TOPICEVAL_SHARED_DATA``, ``../shared/data`` beside the
repository (the source checkout the package runs from, as with an editable install; or, for a
regular ``pip install .``, the local folder pip installed it from, which pip records in the
distribution's ``direct_url.json``), and ``shared/data`` in the working directory or any folder above
it; nothing is downloaded. :func:`shared_data_dir` does the search (also for ``shared:`` paths of a
benchmark config).

:func:`load_default` reads the dataset shipped inside the package (:data:`DEFAULT`), so that demos
and the main job run with no data folder at all.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from topiceval._utils import PathLike, as_path
from topiceval.errors import InputError

from .readers import READ_KEY, read, standardize

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "DATASETS",
    "DATASET_KEY",
    "DEFAULT",
    "DatasetInfo",
    "load_dataset",
    "load_default",
    "shared_data_dir",
]

#: ``uns`` key holding a loaded dataset's :class:`DatasetInfo`.
DATASET_KEY = "topiceval_dataset"
ENV_VAR = "TOPICEVAL_SHARED_DATA"
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset, recorded in ``uns["topiceval_dataset"]`` when it is loaded.

    Attributes
    ----------
    name
        Registry name.
    species
        ``"human"`` or ``"mouse"`` (chooses the gene sets: ``hallmark`` / ``mouse_hallmark``).
    label_key
        ``obs`` column of the cell types.
    n_cells, n_genes, n_types
        Shape as loaded (``n_genes`` 0 when there is no expression matrix).
    values
        What ``X`` holds: ``"counts"`` (raw, for :func:`~topiceval.datasets.preprocess`),
        ``"log_expression"`` (already normalised and logged by the authors) or ``"none"``.
    description
        One line.
    citation
        The paper to cite.
    accession
        Public archive of the raw data.
    source
        Where the file was taken from (repository and commit).
    licence
        Terms of the source.
    files
        Paths relative to the shared data folder.
    gene_sets
        Shipped collection matching the species (for TC / enrichment).
    """

    name: str
    species: str
    label_key: str
    n_cells: int
    n_genes: int
    n_types: int
    values: str
    description: str
    citation: str
    accession: str
    source: str
    licence: str
    files: tuple[str, ...] = field(default_factory=tuple)
    gene_sets: str = "hallmark"

    def as_uns(self) -> dict[str, Any]:
        """JSON / h5ad-friendly dict (lists instead of tuples)."""
        out = asdict(self)
        out["files"] = list(self.files)
        return out


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="yan",
            species="human",
            label_key="cell_type",
            n_cells=90,
            n_genes=4656,
            n_types=6,
            values="log_expression",
            description="Human preimplantation embryos and embryonic stem cells (Tang protocol); "
            "log-scaled RPKM of 4656 genes as distributed with d-scIGM",
            citation="Yan L. et al. Single-cell RNA-Seq profiling of human preimplantation embryos "
            "and embryonic stem cells. Nat Struct Mol Biol 20:1131-1139 (2013)",
            accession="GEO GSE36552",
            source="nbnbhwyy/d-scIGM (commit a1b1eec), datasets/yan_HIGHPRE.csv and yan_cell_anno.csv",
            licence="no licence stated; public data (GEO)",
            files=("datasets/yan/yan_HIGHPRE.csv", "datasets/yan/yan_cell_anno.csv"),
        ),
        DatasetInfo(
            name="wang",
            species="human",
            label_key="cell_type",
            n_cells=457,
            n_genes=0,
            n_types=7,
            values="none",
            description="Human pancreas; cell types and scGPT zero-shot cell embeddings "
            "(obsm['X_scgpt'], 512-d) only, no expression matrix",
            citation="Wang Y. J. et al. Single-cell transcriptomics of the human endocrine pancreas. "
            "Diabetes 65:3028-3038 (2016)",
            accession="GEO GSE83139",
            source="nbnbhwyy/scE2TM (commit b4562a5), data/Wang_cell_anno.csv and the scGPT embedding",
            licence="no licence stated; public data (GEO)",
            files=("datasets/wang/wang_cell_anno.csv", "datasets/wang/wang_scgpt_embedding.csv"),
        ),
        DatasetInfo(
            name="pollen",
            species="human",
            label_key="cell_type",
            n_cells=299,
            n_genes=23794,
            n_types=11,
            values="counts",
            description="Cell lines and developing cortex (Fluidigm C1, low and high coverage); "
            "read counts",
            citation="Pollen A. A. et al. Low-coverage single-cell mRNA sequencing reveals cellular "
            "heterogeneity and activated signaling pathways in developing cerebral cortex. "
            "Nat Biotechnol 32:1053-1058 (2014)",
            accession="SRA SRP041736",
            source="gongx030/scDatasets (commit f0204657), data/pollen.rda",
            licence="MIT (scDatasets repository); public data (SRA)",
            files=("datasets/pollen/pollen.h5ad",),
        ),
        DatasetInfo(
            name="darmanis",
            species="human",
            label_key="cell_type",
            n_cells=466,
            n_genes=22085,
            n_types=9,
            values="counts",
            description="Adult and fetal human brain (Fluidigm C1, SMARTer); HTSeq read counts",
            citation="Darmanis S. et al. A survey of human brain transcriptome diversity at the single "
            "cell level. PNAS 112:7285-7290 (2015)",
            accession="GEO GSE67835",
            source="numpde/sta426_deconvo (commit d8f37850)",
            licence="none given (repository licence TBD); public data (GEO)",
            files=("datasets/darmanis/darmanis.h5ad",),
        ),
        DatasetInfo(
            name="kang_pbmc",
            species="human",
            label_key="cell_type",
            n_cells=1556,
            n_genes=1267,
            n_types=5,
            values="counts",
            description="Lupus PBMCs, control and IFN-beta stimulated (10x); UMI counts, subsampled by "
            "muscat to 1267 well-expressed genes",
            citation="Kang H. M. et al. Multiplexed droplet single-cell RNA-sequencing using natural "
            "genetic variation. Nat Biotechnol 36:89-94 (2018)",
            accession="GEO GSE96583",
            source="HelenaLC/muscat (commit 017b290b), data/example_sce.rda",
            licence="GPL-3 (muscat repository); public data (GEO)",
            files=("datasets/kang_pbmc/kang_pbmc.h5ad",),
        ),
        DatasetInfo(
            name="ting",
            species="mouse",
            label_key="cell_type",
            n_cells=149,
            n_genes=21677,
            n_types=7,
            values="counts",
            description="Mouse pancreatic circulating tumour cells, primary tumour, cell lines; read counts",
            citation="Ting D. T. et al. Single-cell RNA sequencing identifies extracellular matrix gene "
            "expression by pancreatic circulating tumor cells. Cell Rep 8:1905-1918 (2014)",
            accession="GEO GSE51372",
            source="alenzhao/clustools (commit 800d0bf4), data/ting.rda",
            licence="none given; public data (GEO)",
            files=("datasets/ting/ting.h5ad",),
            gene_sets="mouse_hallmark",
        ),
    )
}

#: The dataset shipped inside the package (:func:`load_default`), made by
#: ``scripts/make_default_dataset.py`` from ``pollen``.
DEFAULT = DatasetInfo(
    name="pollen_hvg5000",
    species="human",
    label_key="cell_type",
    n_cells=299,
    n_genes=5000,
    n_types=11,
    values="counts",
    description="Pollen et al. 2014 (299 cells, 11 cell lines and cortex samples): raw read counts of "
    "the 5000 highly variable genes that preprocess(n_top_genes=5000) selects on all 23794 genes",
    citation=DATASETS["pollen"].citation,
    accession=DATASETS["pollen"].accession,
    source="shared/data/datasets/pollen/pollen.h5ad, itself from gongx030/scDatasets (commit f0204657)",
    licence=DATASETS["pollen"].licence,
    files=("pollen_hvg5000.h5ad",),
)


# --------------------------------------------------------------------------- locating data
def _source_checkout() -> Path | None:
    """The repository the package runs from (a source checkout or an editable install), or None."""
    repo = _HERE.parents[1]  # topiceval/datasets -> topiceval -> repository
    return repo if (repo / "pyproject.toml").is_file() else None


def _installed_from() -> Path | None:
    """The local folder a regular (non-editable) install of this copy was made from, or None.

    pip records it in the distribution's ``direct_url.json`` (PEP 610) as a ``file://`` URL with
    ``dir_info``; it is used only when that distribution's files are the ones running.
    """
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlsplit
    from urllib.request import url2pathname

    try:
        dist = metadata.distribution("topiceval")
        if Path(dist.locate_file("topiceval/datasets/registry.py")).resolve() != Path(__file__).resolve():
            return None
        record = json.loads(dist.read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError, OSError):
        return None
    if not isinstance(record, dict) or "dir_info" not in record:
        return None
    url = urlsplit(str(record.get("url", "")))
    if url.scheme != "file":
        return None
    return Path(url2pathname(unquote(url.path)))


_ABOVE = "above the working directory"


def _candidates(data_dir: PathLike | None) -> list[tuple[str, Path]]:
    if data_dir is not None:
        return [("data_dir argument", as_path(data_dir))]
    found = []
    env = os.environ.get(ENV_VAR)
    if env:
        found.append((f"${ENV_VAR}", as_path(env)))
    repo = _source_checkout()
    if repo is not None:
        found.append(("beside the repository", repo.parent / "shared" / "data"))
    else:
        origin = _installed_from()
        if origin is not None:
            found.append(("beside the repository it was installed from", origin.parent / "shared" / "data"))
    cwd = Path.cwd()
    found.append(("in the working directory or a folder above it", cwd / "shared" / "data"))
    found.extend((_ABOVE, folder / "shared" / "data") for folder in cwd.parents)
    return found


def shared_data_dir(data_dir: PathLike | None = None) -> Path:
    """The shared data folder (holding ``datasets/``), or an error naming every place tried.

    Parameters
    ----------
    data_dir
        Use this folder (then nothing else is tried).
    """
    tried = []
    for where, path in _candidates(data_dir):
        if (path / "datasets").is_dir():
            return path
        if where != _ABOVE:  # the working directory's entry stands for the folders above it
            tried.append(f"{path} ({where})")
    raise InputError(
        "the shared data folder (with datasets/) was not found; tried " + "; ".join(tried)
        + f". Pass data_dir=... or set ${ENV_VAR}; load_default() needs no folder"
    )


# --------------------------------------------------------------------------- loading
def load_dataset(name: str, *, data_dir: PathLike | None = None) -> AnnData:
    """Read a registered dataset of the shared data folder.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`: ``yan``, ``wang``, ``pollen``, ``darmanis``, ``kang_pbmc``,
        ``ting``.
    data_dir
        The shared data folder (default: found as described in this module's docstring).

    Returns
    -------
    AnnData
        Cells x genes with the cell types in ``obs[info.label_key]`` (categorical) and the
        :class:`DatasetInfo` in ``uns["topiceval_dataset"]``. ``X`` holds what the source holds
        (``info.values``): raw counts for the h5ad datasets (use
        :func:`~topiceval.datasets.preprocess`), log-scaled RPKM for ``yan``, nothing for
        ``wang`` (457 x 0, with the scGPT embedding in ``obsm["X_scgpt"]``).

    Raises
    ------
    InputError
        Unknown name (the message lists the registry), or the folder or a file is absent.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; registered: {', '.join(DATASETS)} (or load_default())")
    info = DATASETS[name]
    root = shared_data_dir(data_dir)
    paths = [root / f for f in info.files]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"dataset {name!r}: file(s) not found: {', '.join(missing)}")
    if name == "yan":
        adata = read(paths[0], orientation="cells_by_genes")
        labels = pd.read_csv(paths[1], index_col=0).iloc[:, 0]
        adata = standardize(adata, labels=labels.astype(str).tolist(), label_key=info.label_key)
    elif name == "wang":
        adata = _load_wang(paths[0], paths[1], info.label_key)
    else:
        adata = read(paths[0], label_key=info.label_key)
    adata.obs[info.label_key] = adata.obs[info.label_key].astype("category")
    adata.uns[DATASET_KEY] = info.as_uns()
    return adata


def _load_wang(labels_file: Path, embedding_file: Path, label_key: str) -> AnnData:
    import anndata
    import scipy.sparse as sp

    labels = pd.read_csv(labels_file, index_col=0).iloc[:, 0].astype(str)
    embedding = pd.read_csv(embedding_file, index_col=0)
    if len(embedding) != len(labels):
        raise InputError(f"{embedding_file} has {len(embedding)} rows for {len(labels)} labelled cells")
    obs = pd.DataFrame({label_key: pd.Categorical(labels.to_numpy())}, index=[f"wang_cell{i:03d}" for i in range(len(labels))])
    adata = anndata.AnnData(X=sp.csr_matrix((len(labels), 0), dtype=np.float32), obs=obs)
    adata.obsm["X_scgpt"] = embedding.to_numpy(dtype=np.float32)
    adata.uns[READ_KEY] = {"format": "csv", "label_key": label_key, "path": str(labels_file)}
    return adata


def load_default() -> AnnData:
    """The dataset shipped inside the package: :data:`DEFAULT` (Pollen et al. 2014, 5000 genes).

    299 cells x 5000 genes of raw read counts (``float32`` CSR), 11 labelled cell types in
    ``obs["cell_type"]``, the library size over all 23794 genes of the source in
    ``obs["total_counts_all_genes"]``; citation and licence in ``uns["topiceval_dataset"]``. The
    genes are the 5000 that ``preprocess(pollen, n_top_genes=5000)`` selects; run
    :func:`~topiceval.datasets.preprocess` on it before training (it then normalises over these
    5000 genes).
    """
    import anndata

    path = _HERE / DEFAULT.files[0]
    adata = anndata.read_h5ad(path)
    adata.X = adata.X.astype(np.float32)
    adata.uns[DATASET_KEY] = {**DEFAULT.as_uns(), **dict(adata.uns.get(DATASET_KEY, {}))}
    adata.uns[READ_KEY] = {"format": "h5ad", "path": str(path), "label_key": DEFAULT.label_key}
    return adata
