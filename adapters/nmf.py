"""Non-negative matrix factorisation (scikit-learn) on counts: the leaderboard's floor.

``X ~ W H`` with ``W`` cells x topics and ``H`` topics x genes, fitted by
:class:`sklearn.decomposition.NMF` (multiplicative updates on the Kullback-Leibler divergence by
default, the Poisson likelihood of counts, which makes NMF the maximum-likelihood version of
pLSA). Deterministic: the ``nndsvda`` initialisation and the solver depend on ``seed`` only.

Outputs (normalisation):

* ``topic_gene`` = the rows of ``H`` scaled to sum 1: each topic is a distribution over genes
  (the ranking of genes inside a topic, hence TC / TD / TQ, is that of ``H``);
* ``cell_topic`` = ``W * H.sum(axis=1)`` with rows scaled to sum 1: the share of each cell's fitted
  counts that comes from each topic (``W diag(s) (H / s)`` is the same factorisation with
  simplex topics, ``s`` the row sums of ``H``). A cell with an all-zero row of ``W`` gets uniform
  proportions. IP uses the argmax, which is the topic contributing most counts.
* no ``cell_embedding`` (clustering uses ``cell_topic``).

Input: ``layers["counts"]`` (what :func:`topiceval.datasets.preprocess` keeps) unless ``layer``
is given; without that layer, ``X`` when it holds raw counts (a counts file as it comes). Any
non-negative matrix works (``layer="X"`` factorises the log-normalised values).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
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
)
from topiceval.adapters.registry import TrainParams, TrainResult

from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_TOPICS", "fit", "train"]

DEFAULT_TOPICS = 20
#: Solver iterations (``max_iter``) unless ``epochs`` is given.
DEFAULT_EPOCHS = 400
#: Model options (``TrainParams.options`` / ``--set KEY=VALUE``) and their defaults.
DEFAULTS: dict[str, Any] = {
    "beta_loss": "kullback-leibler",  # or "frobenius"
    "solver": "mu",  # "cd" only with frobenius
    "init": "nndsvda",
    "tol": 1e-4,
    "alpha_W": 0.0,
    "alpha_H": "same",
    "l1_ratio": 0.0,
    # Print the solver's progress (scikit-learn's ``verbose``: every 10 iterations) on stderr;
    # ``TrainParams.progress`` sets it when not given. Changes no number.
    "progress": False,
}


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: fit NMF on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``layers["counts"]`` unless ``params.layer`` names another
        (``"X"`` for ``adata.X``).
    params
        ``n_topics`` (default 20), ``epochs`` (solver iterations, default 400), ``seed``, and the
        options of :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(n_topics, n_genes)`` rows on the simplex, ``cell_topic``
        ``(n_cells, n_topics)`` rows on the simplex.
    """
    from sklearn.decomposition import NMF

    options = parse_options(params.options, DEFAULTS, "nmf")
    progress = bool(resolve_progress(options, params.options, params.progress))
    options.pop("progress")
    n_topics = check_positive_int(params.n_topics or DEFAULT_TOPICS, "n_topics", 2)
    max_iter = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    data = model_input(adata, params.layer, default=COUNTS_LAYER, model="nmf",
                       needs="non-negative values", dtype=np.float64)
    if n_topics > min(adata.shape):
        raise InputError(f"nmf: n_topics = {n_topics} exceeds min(n_cells, n_genes) = {min(adata.shape)}")
    try:
        model = NMF(n_components=n_topics, max_iter=max_iter, random_state=params.seed,
                    verbose=int(progress), **options)
    except TypeError as exc:
        raise InputError(f"nmf: {exc}") from None
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # scikit-learn prints its progress lines on stdout: keep stdout for results
            with contextlib.redirect_stdout(sys.stderr) if progress else contextlib.nullcontext():
                W = model.fit_transform(data.matrix)
        except ValueError as exc:
            raise InputError(f"nmf: {exc}") from None
    for warning in caught:  # keep the convergence warning, say which model it is about
        warnings.warn(f"nmf: {warning.message}", warning.category, stacklevel=2)
    H = model.components_
    scale = H.sum(axis=1)
    outputs = TopicOutputs(
        topic_gene=normalize_rows(H),
        gene_names=gene_names(adata),
        cell_topic=normalize_rows(W * scale[None, :]),
        name="nmf",
        metadata={"model": "nmf", "seed": params.seed, "input": data.source},
    )
    hyper = {"n_topics": n_topics, "epochs": max_iter, "seed": params.seed, "input": data.source, **options}
    info = {
        "n_iter": int(model.n_iter_),
        "reconstruction_err": float(model.reconstruction_err_),
        "fit_s": time.perf_counter() - started,
        "converged": int(model.n_iter_) < max_iter,
    }
    return TrainResult(outputs=outputs, hyperparameters=hyper, save=None, info=info)


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Fit NMF and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`).

    Examples
    --------
    >>> from topiceval import datasets
    >>> from topiceval.adapters import nmf
    >>> adata = datasets.preprocess(datasets.load_default())  # doctest: +SKIP
    >>> outputs = nmf.fit(adata, n_topics=11, seed=0)  # doctest: +SKIP
    """
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
