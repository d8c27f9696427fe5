"""Latent Dirichlet allocation (scikit-learn) on counts: the classic topic-model baseline.

Fitted by :class:`sklearn.decomposition.LatentDirichletAllocation` with batch variational Bayes
(deterministic given ``seed``; ``learning_method="online"`` is available as an option).
Cells are documents and genes are words; counts are the word counts.

Outputs (normalisation):

* ``topic_gene`` = ``components_`` (the variational Dirichlet parameters of the topic-gene
  distributions) with rows scaled to sum 1: the posterior-mean probability of each gene in each
  topic;
* ``cell_topic`` = ``transform(X)``: the posterior-mean topic proportions of each cell (rows sum
  to 1);
* no ``cell_embedding`` (clustering uses ``cell_topic``).

Input: ``layers["counts"]`` unless ``layer`` is given; without that layer, ``X`` when it holds raw
counts. LDA models integer counts; non-integer input (``layer="X"``) is accepted with a warning.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from topiceval.adapters._common import (
    COUNTS_LAYER,
    check_positive_int,
    gene_names,
    model_input,
    normalize_rows,
    parse_options,
    resolve_progress,
    warn_if_not_counts,
)
from topiceval.adapters.registry import TrainParams, TrainResult

from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_TOPICS", "fit", "train"]

DEFAULT_TOPICS = 20
#: Passes over the data (``max_iter``) unless ``epochs`` is given.
DEFAULT_EPOCHS = 50
#: Model options and their defaults (``None`` priors mean ``1 / n_topics``, scikit-learn's default).
DEFAULTS: dict[str, Any] = {
    "doc_topic_prior": None,
    "topic_word_prior": None,
    "learning_method": "batch",
    "batch_size": 128,
    "learning_decay": 0.7,
    "learning_offset": 10.0,
    "evaluate_every": -1,
    "mean_change_tol": 1e-3,
    "max_doc_update_iter": 100,
    # One line per pass on stderr (scikit-learn's ``verbose``); ``TrainParams.progress`` sets it
    # when not given. Changes no number.
    "progress": False,
}


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: fit LDA on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``layers["counts"]`` unless ``params.layer`` names another.
    params
        ``n_topics`` (default 20), ``epochs`` (passes, default 50), ``seed`` and the options of
        :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(n_topics, n_genes)`` and ``cell_topic`` ``(n_cells, n_topics)``, rows on
        the simplex.
    """
    from sklearn.decomposition import LatentDirichletAllocation

    options = parse_options(params.options, DEFAULTS, "lda")
    progress = bool(resolve_progress(options, params.options, params.progress))
    options.pop("progress")
    for key in ("doc_topic_prior", "topic_word_prior"):
        if isinstance(options[key], str):
            try:
                options[key] = float(options[key])
            except ValueError:
                raise InputError(f"lda: option {key} must be a number, got {options[key]!r}") from None
    n_topics = check_positive_int(params.n_topics or DEFAULT_TOPICS, "n_topics", 2)
    max_iter = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    data = model_input(adata, params.layer, default=COUNTS_LAYER, model="lda",
                       needs="raw counts", dtype=np.float64)
    warn_if_not_counts(data, "lda")
    try:
        model = LatentDirichletAllocation(n_components=n_topics, max_iter=max_iter,
                                          random_state=params.seed, n_jobs=1, verbose=int(progress),
                                          **options)
    except TypeError as exc:
        raise InputError(f"lda: {exc}") from None
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr) if progress else contextlib.nullcontext():
            theta = model.fit_transform(data.matrix)
    except ValueError as exc:
        raise InputError(f"lda: {exc}") from None
    outputs = TopicOutputs(
        topic_gene=normalize_rows(model.components_),
        gene_names=gene_names(adata),
        cell_topic=normalize_rows(theta),
        name="lda",
        metadata={"model": "lda", "seed": params.seed, "input": data.source},
    )
    hyper = {"n_topics": n_topics, "epochs": max_iter, "seed": params.seed, "input": data.source,
             **options}
    info = {"n_iter": int(model.n_iter_), "fit_s": time.perf_counter() - started,
            "bound": float(model.bound_) if hasattr(model, "bound_") else None}
    return TrainResult(outputs=outputs, hyperparameters=hyper, save=None, info=info)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Fit LDA and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`)."""
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
