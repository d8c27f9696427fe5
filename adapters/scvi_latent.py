"""scVI (Lopez et al. 2018): scvi-tools' ``SCVI``, a cell embedding without topics (clustering only).

The scE2TM paper ranks scVI beside the topic models on clustering (its Fig. 3); scVI has no
topic-gene matrix, so it is scored on ARI / NMI of its latent space alone (embedding-only
scoring) and kept out of every interpretability metric. Install: ``pip install "topiceval[ldvae]"``
(the same scvi-tools as LDVAE).

What this adapter does around the package (as :mod:`topiceval.adapters.ldvae`):

* input: ``layers["counts"]`` (raw counts) as a CSR ``X`` of a fresh AnnData registered with
  ``SCVI.setup_anndata`` (one batch);
* seeding: ``scvi.settings.seed``, the callers' RNG states restored afterwards;
* training on every cell (``train_size=1.0``) on the CPU unless ``accelerator`` says otherwise;
* defaults: ``SCVI``'s own (``n_hidden=128``, ``n_layers=1``, ``dropout_rate=0.1``,
  ``gene_likelihood="zinb"``, gene dispersion) and 400 epochs, ``lr=1e-3``, batch 128: what
  ``SCVI.train()`` does on fewer than 20,000 cells; ``n_topics`` is the latent dimension
  (``n_latent``, default 10);
* outputs: ``cell_embedding`` = the latent mean (``get_latent_representation()``); no
  ``topic_gene`` and no ``cell_topic``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from topiceval.adapters._common import (
    COUNTS_LAYER,
    check_positive_int,
    default_threads,
    gene_names,
    global_seed,
    model_input,
    parse_options,
    quiet_loggers,
    resolve_progress,
    torch_threads,
    warn_if_not_counts,
)
from topiceval.adapters.ldvae import _IGNORED_WARNINGS, _LOGGERS, _import_scvi
from topiceval.adapters.registry import TrainParams, TrainResult

from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_LATENT", "fit", "train"]

DEFAULT_LATENT = 10
DEFAULT_EPOCHS = 400
#: Model options and their defaults (``scvi.model.SCVI``'s own).
DEFAULTS: dict[str, Any] = {
    "n_hidden": 128,
    "n_layers": 1,
    "dropout_rate": 0.1,
    "dispersion": "gene",
    "gene_likelihood": "zinb",
    "latent_distribution": "normal",
    "batch_size": 128,
    "lr": 1e-3,
    "threads": default_threads(),
    "accelerator": "cpu",
    "progress": False,
}


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: train scVI on ``adata`` (see the module docstring).

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
        ``cell_embedding`` ``(n_cells, n_latent)`` only; ``save`` writes scvi-tools' own model
        folder (``model.pt``, read back with ``scvi.model.SCVI.load``).
    """
    scvi = _import_scvi()
    import anndata
    import scipy.sparse as sp

    options = parse_options(params.options, DEFAULTS, "scvi")
    options["progress"] = bool(resolve_progress(options, params.options, params.progress))
    n_latent = check_positive_int(params.n_topics or DEFAULT_LATENT, "n_topics", 2)
    epochs = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    data = model_input(adata, params.layer, default=COUNTS_LAYER, model="scvi")
    warn_if_not_counts(data, "scvi")
    counts = anndata.AnnData(X=sp.csr_matrix(data.matrix, dtype=np.float32))
    counts.obs_names = [str(i) for i in range(adata.n_obs)]
    counts.var_names = [str(g) for g in gene_names(adata)]

    started = time.perf_counter()
    previous_seed, previous_verbosity = scvi.settings.seed, scvi.settings.verbosity
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
            scvi.model.SCVI.setup_anndata(counts)
            try:
                model = scvi.model.SCVI(
                    counts, n_latent=n_latent, n_hidden=int(options["n_hidden"]),
                    n_layers=int(options["n_layers"]), dropout_rate=float(options["dropout_rate"]),
                    dispersion=options["dispersion"], gene_likelihood=options["gene_likelihood"],
                    latent_distribution=options["latent_distribution"],
                )
            except (ValueError, KeyError) as exc:
                raise InputError(f"scvi: {exc}") from None
            model.train(
                max_epochs=epochs, accelerator=options["accelerator"], devices=1, train_size=1.0,
                batch_size=int(options["batch_size"]), plan_kwargs={"lr": float(options["lr"])},
                enable_progress_bar=bool(options["progress"]), enable_model_summary=False,
                enable_checkpointing=False,
            )
            latent = np.asarray(model.get_latent_representation(), dtype=np.float64)
        finally:
            scvi.settings.verbosity = previous_verbosity
            scvi.settings._seed = previous_seed
    fitted = time.perf_counter()

    outputs = TopicOutputs(topic_gene=None, cell_embedding=latent, name="scvi",
                           metadata={"model": "scvi", "seed": params.seed, "input": data.source})
    hyper = {"n_topics": n_latent, "epochs": epochs, "seed": params.seed, "input": data.source,
             **{k: v for k, v in options.items() if k != "progress"}}
    history = getattr(model, "history", None) or {}
    elbo = history.get("elbo_train")
    info = {"fit_s": fitted - started, "scvi-tools": scvi.__version__,
            "elbo_train": None if elbo is None or len(elbo) == 0 else float(np.asarray(elbo)[-1, 0])}

    def save(folder: Path) -> None:
        model.save(str(folder), overwrite=True, save_anndata=False)

    return TrainResult(outputs=outputs, hyperparameters=hyper, save=save, info=info)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Train scVI and return its embedding-only :class:`~topiceval.protocol.TopicOutputs`."""
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
