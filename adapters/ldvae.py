"""LDVAE (Svensson et al. 2020): scvi-tools' ``LinearSCVI``, a VAE with a linear decoder.

Install: ``pip install "topiceval[ldvae]"`` after ``pip install torch==2.13.0`` (CPU); the extra
pins ``scvi-tools>=1.4.2,<1.5`` (it brings lightning, pyro-ppl, torchmetrics, tensorboard; no
jax).

What this adapter does around the package:

* input: ``layers["counts"]`` (raw counts; the negative-binomial likelihood needs them) as a CSR
  ``X`` of a fresh AnnData registered with ``LinearSCVI.setup_anndata`` (one batch);
* seeding: ``scvi.settings.seed`` (lightning's ``seed_everything``: python, numpy and torch global
  RNGs, and scvi's data splitter), with the callers' RNG states restored afterwards;
* training on every cell (``train_size=1.0``), on the CPU unless ``accelerator`` says otherwise,
  with lightning's and scvi's INFO messages silenced (``progress=True`` shows the bar);
* outputs:

  - ``topic_gene`` = ``get_loadings().T``: the linear decoder's weights, ``(n_latent, n_genes)``,
    **signed** and unnormalised. Top genes are the largest (most positive) loadings; a latent
    dimension's sign is arbitrary, so its negative pole is not scored;
  - ``cell_topic`` = the latent mean (``get_latent_representation()``), ``(n_cells, n_latent)``:
    **not a simplex** (real values of either sign). Interpretation purity assigns each cell to
    its argmax dimension, i.e. the latent factor with the largest positive value; with signed
    factors this is a convention, not a topic proportion;
  - ``cell_embedding`` = the same latent mean (what scvi-tools users cluster on).
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from topiceval.adapters._common import (
    COUNTS_LAYER,
    check_positive_int,
    default_threads,
    gene_names,
    global_seed,
    import_extra,
    model_input,
    parse_options,
    resolve_progress,
    quiet_loggers,
    torch_threads,
    warn_if_not_counts,
)
from topiceval.adapters.registry import TrainParams, TrainResult

from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_TOPICS", "EXTRA", "fit", "train"]

EXTRA = "ldvae"
DEFAULT_TOPICS = 10
DEFAULT_EPOCHS = 400
#: Model options and their defaults (``LinearSCVI``'s and its ``train()``'s own).
DEFAULTS: dict[str, Any] = {
    "n_hidden": 128,
    "n_layers": 1,
    "dropout_rate": 0.1,
    "dispersion": "gene",
    "gene_likelihood": "nb",
    "latent_distribution": "normal",
    "batch_size": 128,
    "lr": 1e-3,
    "threads": default_threads(),
    "accelerator": "cpu",
    "progress": False,
}

_LOGGERS = ("scvi", "lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
# Noise from lightning that says nothing about the user's data or model.
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",
    r".*LeafSpec.*",
    r".*GPU available but not used.*",
    r".*smaller than the logging interval.*",
)


def _import_scvi() -> Any:
    import_extra("torch", EXTRA, "ldvae")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation noise from scvi's dependencies at import
        return import_extra("scvi", EXTRA, "ldvae")


@dataclass
class ScviRun:
    """One trained scvi-tools model and what :func:`fit_scvi_model` read around it."""

    model: Any
    scvi: Any
    latent: np.ndarray
    extracted: Any
    data: Any
    counts: Any
    n_latent: int
    epochs: int
    seed: int
    options: dict[str, Any]
    seconds: float

    def result(self, outputs: TopicOutputs) -> TrainResult:
        """The registry's :class:`TrainResult` of this run with ``outputs``."""
        hyper = {"n_topics": self.n_latent, "epochs": self.epochs, "seed": self.seed,
                 "input": self.data.source, **{k: v for k, v in self.options.items() if k != "progress"}}
        history = getattr(self.model, "history", None) or {}
        elbo = history.get("elbo_train")
        info = {"fit_s": self.seconds, "scvi-tools": self.scvi.__version__,
                "elbo_train": None if elbo is None or len(elbo) == 0 else float(np.asarray(elbo)[-1, 0])}
        model = self.model

        def save(folder: Path) -> None:
            model.save(str(folder), overwrite=True, save_anndata=False)

        return TrainResult(outputs=outputs, hyperparameters=hyper, save=save, info=info)


def fit_scvi_model(adata: AnnData, params: TrainParams, *, model: str, class_name: str,
                   defaults: dict[str, Any], default_latent: int, default_epochs: int,
                   extract: Callable[[Any], Any] | None = None) -> ScviRun:
    """Train ``scvi.model.<class_name>`` on the counts of ``adata`` as every scvi-tools adapter does.

    Counts as a CSR ``X`` of a fresh AnnData (one batch), seeded through ``scvi.settings.seed``
    (the callers' RNG states and scvi's settings restored afterwards), trained on every cell with
    lightning's noise silenced; ``extract(model)`` runs inside that context (e.g. the loadings).
    """
    scvi = _import_scvi()
    import anndata
    import scipy.sparse as sp

    options = parse_options(params.options, defaults, model)
    options["progress"] = bool(resolve_progress(options, params.options, params.progress))
    n_latent = check_positive_int(params.n_topics or default_latent, "n_topics", 2)
    epochs = check_positive_int(params.epochs or default_epochs, "epochs")
    data = model_input(adata, params.layer, default=COUNTS_LAYER, model=model)
    warn_if_not_counts(data, model)
    counts = anndata.AnnData(X=sp.csr_matrix(data.matrix, dtype=np.float32))
    counts.obs_names = [str(i) for i in range(adata.n_obs)]
    counts.var_names = [str(g) for g in gene_names(adata)]
    model_class = getattr(scvi.model, class_name)

    started = time.perf_counter()
    previous_seed, previous_verbosity = scvi.settings.seed, scvi.settings.verbosity
    extracted = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch_threads(options["threads"]))
        stack.enter_context(global_seed(params.seed))
        stack.enter_context(quiet_loggers(*_LOGGERS))
        stack.enter_context(warnings.catch_warnings())
        for pattern in _IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            scvi.settings.verbosity = logging.WARNING
            scvi.settings.seed = params.seed
            model_class.setup_anndata(counts)
            try:
                trained = model_class(
                    counts, n_latent=n_latent, n_hidden=int(options["n_hidden"]),
                    n_layers=int(options["n_layers"]), dropout_rate=float(options["dropout_rate"]),
                    dispersion=options["dispersion"], gene_likelihood=options["gene_likelihood"],
                    latent_distribution=options["latent_distribution"],
                )
            except (ValueError, KeyError) as exc:
                raise InputError(f"{model}: {exc}") from None
            trained.train(
                max_epochs=epochs, accelerator=options["accelerator"], devices=1, train_size=1.0,
                batch_size=int(options["batch_size"]), plan_kwargs={"lr": float(options["lr"])},
                enable_progress_bar=bool(options["progress"]), enable_model_summary=False,
                enable_checkpointing=False,
            )
            if extract is not None:
                extracted = extract(trained)
            latent = np.asarray(trained.get_latent_representation(), dtype=np.float64)
        finally:
            scvi.settings.verbosity = previous_verbosity
            scvi.settings._seed = previous_seed
    return ScviRun(model=trained, scvi=scvi, latent=latent, extracted=extracted, data=data, counts=counts,
                   n_latent=n_latent, epochs=epochs, seed=params.seed, options=options,
                   seconds=time.perf_counter() - started)


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: train LDVAE on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``layers["counts"]`` unless ``params.layer`` names another.
    params
        ``n_topics`` (latent dimensions, default 10), ``epochs`` (default 400), ``seed`` and the
        options of :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(n_topics, n_genes)`` signed loadings, ``cell_topic`` and
        ``cell_embedding`` ``(n_cells, n_topics)`` latent means; ``save`` writes scvi-tools' own
        model folder (``model.pt``, read back with ``scvi.model.LinearSCVI.load``).
    """
    run = fit_scvi_model(adata, params, model="ldvae", class_name="LinearSCVI", defaults=DEFAULTS,
                         default_latent=DEFAULT_TOPICS, default_epochs=DEFAULT_EPOCHS,
                         extract=lambda model: model.get_loadings())
    loadings, latent, data, counts = run.extracted, run.latent, run.data, run.counts

    topic_gene = loadings.loc[counts.var_names].to_numpy(dtype=np.float64).T
    outputs = TopicOutputs(
        topic_gene=topic_gene,
        gene_names=gene_names(adata),
        cell_topic=latent,
        cell_embedding=latent.copy(),
        name="ldvae",
        metadata={"model": "ldvae", "seed": params.seed, "input": data.source},
    )
    return run.result(outputs)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Train LDVAE and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`)."""
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
