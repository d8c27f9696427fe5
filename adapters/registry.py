"""A registry of trainable models and the one output layout every trained model is written in.

A model is registered by name with a trainer: a callable ``trainer(adata, params) -> TrainResult``
named as ``"module:function"`` and imported only when used, the optional-dependency extra that
provides its libraries, the modules that extra must make importable, and a description.
:func:`train` reads the data, calls the trainer and writes the run; ``topiceval train MODEL``
is a thin wrapper around it. Another model is added with one :func:`register` call (or one entry
in :data:`BUILTIN`).

Output folder layout (``DIR``), the same for every model:

* ``DIR/outputs.h5ad``: the :func:`topiceval.io.write_outputs_h5ad` layout (``varm["topic_gene"]``
  genes x topics, ``obsm["X_topic"]`` cell-topic, ``obsm["X_topic_embedding"]`` the cell embedding
  when the model has one, ``uns["topiceval"]["name"]``), with the input's ``obs`` (cell names and
  labels), so ``topiceval score --topic-gene DIR/outputs.h5ad --labels DIR/outputs.h5ad:cell_type``
  scores it;
* ``DIR/config.json``: model, hyperparameters, seed, data file (path, sha256, shape as read and
  cells x genes trained on, layer, label and embedding keys, the preprocessing record when
  ``n_top_genes`` asked for it), package versions, timings, and what the trainer reports;
* ``DIR/model/``: the model's own weights and settings (for scE2TM ``weights.pt`` and
  ``model.json``, read back with ``SCE2TM.load(DIR / "model")``); absent for a model that has none.

The folder is written beside its final place and moved there only when complete; an existing
non-empty ``DIR`` is an error unless ``overwrite=True``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topiceval.errors import InputError, TopicEvalError
from topiceval.io import make_temp_dir, write_json, write_outputs_h5ad
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "ModelEntry",
    "TrainParams",
    "TrainResult",
    "BUILTIN",
    "register",
    "get",
    "available",
    "train",
    "OUTPUTS_FILE",
    "CONFIG_FILE",
    "MODEL_DIR",
]

OUTPUTS_FILE = "outputs.h5ad"
CONFIG_FILE = "config.json"
MODEL_DIR = "model"


@dataclass(frozen=True)
class TrainParams:
    """What every trainer receives.

    Attributes
    ----------
    n_topics, epochs
        ``None``: the model's own default.
    seed
        Seed of every random step.
    layer
        AnnData layer holding the model input; ``None``: ``X``.
    embedding_key
        ``obsm`` key of an external cell embedding, for models that use one.
    label_key
        ``obs`` column of cell labels (recorded; training is label-free).
    n_top_genes
        When set, the data (raw counts) first go through the paper's preprocessing,
        :func:`topiceval.datasets.preprocess` with this many highly variable genes; its record is
        kept in ``config.json``. ``None``: the data are used as they are.
    options
        Model-specific hyperparameters (``--set KEY=VALUE`` on the command line).
    progress
        Show the model's progress (bar or periodic lines, on stderr); ``None``: the model's own
        default. An explicit ``progress`` option wins. Changes no number.
    """

    n_topics: int | None = None
    epochs: int | None = None
    seed: int = 0
    layer: str | None = None
    embedding_key: str | None = None
    label_key: str | None = None
    n_top_genes: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool | None = None


@dataclass
class TrainResult:
    """What a trainer returns.

    Attributes
    ----------
    outputs
        Topic-gene matrix, cell-topic matrix and cell embedding for the training cells.
    hyperparameters
        Every setting that changes the result (JSON-serialisable).
    save
        Writes the model's weights into the folder it is given; ``None`` if there are none.
    info
        Anything else worth recording (timings, loss history, devices). A fit resumed from a
        checkpoint puts the training seconds of its earlier processes in ``resumed_fit_s``
        (recorded in ``config.json`` ``timings`` and added to the fit time a leaderboard reports).
    """

    outputs: TopicOutputs
    hyperparameters: dict[str, Any]
    save: Callable[[Path], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


Trainer = Callable[["AnnData", TrainParams], TrainResult]


@dataclass(frozen=True)
class ModelEntry:
    """A registered trainable model.

    Attributes
    ----------
    name
        Name on the command line (``topiceval train NAME``).
    target
        ``"module:function"`` of the trainer, imported on first use.
    extra
        The optional-dependency extra that provides its libraries (``pip install "topiceval[EXTRA]"``).
    requires
        Modules that must be importable (checked before importing the trainer).
    description
        One line for ``topiceval train --list``.
    input
        What the model trains on when no layer is named: ``"counts"`` (``layers["counts"]``, else
        ``X`` when it holds raw counts), ``"log"`` (log-normalised ``X``; raw counts in ``X`` are
        first put through the paper's preprocessing), ``"any"`` (``X`` as it is) or
        ``"embedding"`` (a precomputed cell embedding in ``obsm``; no expression matrix needed).
    kind
        ``"topic"``: a topic model (topic-gene matrix, scored on every metric); ``"embedding"``: a
        cell embedding alone (no topics), scored on clustering only (ARI / NMI) and kept out of
        the interpretability columns of a leaderboard.
    resumable
        The trainer takes a ``checkpoint`` option (a path: a file, or cNMF's working folder)
        where it saves its training state as it goes and resumes from it: a leaderboard points
        it into its cache, so that a cell killed part-way (a run made in parts) continues where
        it stopped.
    prior
        For a model guided by a gene-set prior: ``"module:function"`` that loads the prior (a
        :class:`~topiceval.gene_sets.GeneSets`) from the ``spec`` its run records in
        ``info.prior_gene_sets``, so that a leaderboard can say which scored collections share
        sets with it (:func:`topiceval.gene_sets.overlap`).
    """

    name: str
    target: str
    extra: str | None
    requires: tuple[str, ...]
    description: str
    input: str = "any"
    kind: str = "topic"
    resumable: bool = False
    prior: str | None = None

    def missing(self) -> list[str]:
        """The required modules that cannot be imported here."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def load(self) -> Trainer:
        """Import the trainer; a missing library raises an error that names the extra."""
        missing = self.missing()
        if missing:
            hint = f'pip install "topiceval[{self.extra}]"' if self.extra else "install them"
            raise TopicEvalError(f"model {self.name!r} needs {', '.join(missing)}: {hint}")
        return _import_target(self.target)

    def load_prior(self, spec: str) -> Any:
        """The model's gene-set prior (a :class:`~topiceval.gene_sets.GeneSets`) from the ``spec``
        its run recorded; ``None`` for a model without :attr:`prior`."""
        return None if self.prior is None else _import_target(self.prior)(spec)


def _import_target(target: str) -> Any:
    """The object a ``"module:function"`` string names, imported on first use."""
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


#: Models shipped with topiceval.
BUILTIN: tuple[ModelEntry, ...] = (
    ModelEntry(
        name="sce2tm",
        target="topiceval.models.sce2tm.api:registry_trainer",
        extra="sce2tm",
        requires=("torch",),
        description="scE2TM (Chen et al.): embedded topic model with cross-view distillation and ECR; PyTorch",
        input="log",
    ),
    ModelEntry(
        name="nmf",
        target="topiceval.adapters.nmf:train",
        extra=None,
        requires=("sklearn",),
        description="NMF (scikit-learn, KL divergence) on counts: fast, deterministic baseline",
        input="counts",
    ),
    ModelEntry(
        name="lda",
        target="topiceval.adapters.lda:train",
        extra=None,
        requires=("sklearn",),
        description="Latent Dirichlet allocation (scikit-learn, batch variational Bayes) on counts",
        input="counts",
    ),
    ModelEntry(
        name="scetm",
        target="topiceval.adapters.scetm:train",
        extra="scetm",
        requires=("torch", "scETM", "tensorboard"),
        description="scETM (Zhao et al.): embedded topic model, PyPI scETM 0.5.0",
        input="counts",
    ),
    ModelEntry(
        name="ldvae",
        target="topiceval.adapters.ldvae:train",
        extra="ldvae",
        requires=("torch", "scvi"),
        description="LDVAE (Svensson et al.): scvi-tools LinearSCVI; topics = signed linear loadings",
        input="counts",
    ),
    ModelEntry(
        name="dscigm",
        target="topiceval.adapters.dscigm:train",
        extra="dscigm",
        requires=("torch",),
        description="d-scIGM: deep Weibull topic model, sawtooth decoder (topiceval's PyTorch code)",
        input="log",
        resumable=True,
    ),
    ModelEntry(
        name="cnmf",
        target="topiceval.adapters.cnmf:train",
        extra="cnmf",
        requires=("cnmf",),
        description="cNMF (Kotliar et al.): consensus NMF over replicates, PyPI cnmf; topics = gene spectra scores",
        resumable=True,
    ),
    ModelEntry(
        name="spectra",
        target="topiceval.adapters.spectra:train",
        extra="spectra",
        requires=("torch", "Spectra"),
        description="Spectra (Kunes et al.): gene programs guided by a gene-set prior, PyPI scspectra",
        prior="topiceval.adapters.spectra:load_prior",
        resumable=True,
    ),
    ModelEntry(
        name="scvi",
        target="topiceval.adapters.scvi_latent:train",
        extra="ldvae",
        requires=("torch", "scvi"),
        description="scVI (Lopez et al.): scvi-tools SCVI latent space; a cell embedding, clustering only",
        input="counts",
        kind="embedding",
    ),
    ModelEntry(
        name="scgpt",
        target="topiceval.adapters.embedding:train",
        extra=None,
        requires=(),
        description="scGPT zero-shot cell embedding, precomputed (obsm['X_scgpt']); clustering only",
        input="embedding",
        kind="embedding",
    ),
)

_REGISTRY: dict[str, ModelEntry] = {entry.name: entry for entry in BUILTIN}


def register(entry: ModelEntry, *, replace: bool = False) -> None:
    """Add a model; an existing name is an error unless ``replace``."""
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"a model named {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry


def get(name: str) -> ModelEntry:
    """The entry of a registered model (case-insensitive)."""
    entry = _REGISTRY.get(name) or _REGISTRY.get(name.lower())
    if entry is None:
        raise InputError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return entry


def available() -> list[ModelEntry]:
    """All registered models, by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


#: Distributions whose name differs from the module a model requires.
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "scvi": "scvi-tools", "Spectra": "scspectra"}


def _versions(entry: ModelEntry) -> dict[str, str]:
    names = ["topiceval", "numpy", "scipy", "anndata", "scikit-learn",
             *(_DISTRIBUTIONS.get(m, m) for m in entry.requires)]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


#: Highly variable genes kept when raw counts are preprocessed for a model that needs log values
#: (the paper's 5000).
AUTO_TOP_GENES = 5000


def _describe_input(entry: ModelEntry, adata: AnnData, params: TrainParams) -> tuple[str, TrainParams, bool]:
    """What the model will train on, in words; the params to train with; whether to preprocess.

    The rules of :attr:`ModelEntry.input`, applied when neither ``layer`` nor ``n_top_genes`` is
    given, so that a counts file as it comes (raw counts in ``X``, no layers) trains every model.
    """
    from topiceval.adapters._common import COUNTS_LAYER, holds_counts

    name = entry.name
    if entry.input == "embedding":
        where = f"obsm[{params.embedding_key!r}]" if params.embedding_key else "obsm"
        return f"{name}: reads the precomputed cell embedding in {where}; nothing is trained", params, False
    if params.n_top_genes is not None:
        where = "layers['counts'] (raw counts)" if entry.input == "counts" else "X (log-normalised)"
        return (f"{name}: preprocessed as asked (normalise, log1p, {params.n_top_genes} highly variable "
                f"genes); trains on {where} of those genes"), params, True
    if params.layer is not None:
        where = "X" if params.layer == "X" else f"layers[{params.layer!r}]"
        return f"{name}: trains on {where}, as asked (--layer)", params, False
    if entry.input == "counts":
        if COUNTS_LAYER in adata.layers:
            return f"{name}: trains on the raw counts in layers['counts'] (--layer to choose another)", params, False
        if holds_counts(adata.X):
            return (f"{name}: no layers['counts'], and X holds raw counts: trains on X "
                    "(--layer to choose another)"), replace(params, layer="X"), False
        raise InputError(
            f"model {name!r} trains on raw counts, but this file has no layers['counts'] and X does not hold "
            "counts (non-integer or negative values, e.g. log-normalised); name the layer that holds "
            "them (--layer NAME), preprocess raw counts (--preprocess N_GENES), or train on X as it "
            f"is (--layer X); its layers: {', '.join(map(str, adata.layers)) or 'none'}")
    if entry.input == "log" and holds_counts(adata.X):
        n_top = min(AUTO_TOP_GENES, int(adata.n_vars))
        return (f"{name}: X holds raw counts, and {name} trains on log-normalised expression: applied "
                f"the paper's preprocessing (normalise to 1e4 per cell, log1p, {n_top} highly variable "
                "genes; --preprocess N_GENES to choose N, --layer X to train on X as it is)"), \
            replace(params, n_top_genes=n_top), True
    return f"{name}: trains on X as it is (--layer to choose a layer)", params, False


def train(model: str, data: str | os.PathLike, out: str | os.PathLike, *, params: TrainParams | None = None,
          overwrite: bool = False, log: Callable[[str], Any] | None = None) -> Path:
    """Train a registered model on an h5ad file and write the run folder (layout above).

    Parameters
    ----------
    model
        Registered name (see :func:`available`).
    data
        ``.h5ad`` file, cells x genes.
    out
        Output folder ``DIR``.
    params
        Common settings and model options.
    overwrite
        Replace an existing non-empty ``DIR``.
    log
        Called with one line saying what the model trains on (and any preprocessing applied), before
        training starts; the line is also kept in ``config.json`` (``data.input``).

    Returns
    -------
    Path
        ``DIR``.
    """
    import anndata

    from topiceval._utils import sha256_file

    params = params or TrainParams()
    entry = get(model)
    data_path = Path(data)
    out_dir = Path(out)
    if not data_path.is_file():
        raise InputError(f"data file not found: {data_path}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise InputError(f"output folder {out_dir} exists and is not empty; choose another, or replace it "
                         "with --overwrite (overwrite=True in Python)")
    trainer = entry.load()

    started = time.perf_counter()
    try:
        adata = anndata.read_h5ad(data_path)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read h5ad {data_path}: {exc}") from None
    loaded = time.perf_counter()
    if params.label_key is not None and params.label_key not in adata.obs:
        raise InputError(f"label column {params.label_key!r} is not in {data_path} obs; its columns are: "
                         f"{', '.join(map(str, adata.obs.columns)) or '(none)'}")
    preprocessing = None
    input_shape = [int(adata.n_obs), int(adata.n_vars)]
    note, params, run_preprocess = _describe_input(entry, adata, params)
    if log is not None:
        log(note)
    if run_preprocess:
        from topiceval.datasets import UNS_KEY, preprocess

        adata = preprocess(adata, n_top_genes=params.n_top_genes, layer=params.layer)
        preprocessing = adata.uns.get(UNS_KEY)
        params = replace(params, layer=None)
    result = trainer(adata, params)
    trained = time.perf_counter()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(f".{out_dir.name}.", out_dir.parent)
    try:
        write_outputs_h5ad(result.outputs, staging / OUTPUTS_FILE, obs=adata.obs.copy())
        files = [OUTPUTS_FILE, CONFIG_FILE]
        if result.save is not None:
            result.save(staging / MODEL_DIR)
            files.append(f"{MODEL_DIR}/")
        written = time.perf_counter()
        write_json({
            "model": entry.name,
            "name": result.outputs.name,
            "hyperparameters": result.hyperparameters,
            "seed": params.seed,
            "data": {
                "path": str(data_path.resolve()),
                "sha256": sha256_file(data_path),
                "shape": input_shape,
                "n_cells": int(adata.n_obs),
                "n_genes": int(adata.n_vars),
                "layer": params.layer,
                "label_key": params.label_key,
                "embedding_key": params.embedding_key,
                "preprocessing": preprocessing,
                "input": note,
            },
            "outputs": {"n_topics": result.outputs.n_topics, "n_genes": result.outputs.n_genes,
                        "cell_topic": result.outputs.cell_topic is not None,
                        "cell_embedding": result.outputs.cell_embedding is not None},
            "files": files,
            "versions": _versions(entry),
            "timings": {"load_s": loaded - started, "fit_s": trained - loaded,
                        "write_s": written - trained, "total_s": written - started,
                        # a resumed fit: the training seconds of the processes before this one
                        "resumed_fit_s": float(result.info.get("resumed_fit_s") or 0.0)},
            "info": result.info,
        }, staging / CONFIG_FILE)
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, trash / "old")
            os.replace(staging, out_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
