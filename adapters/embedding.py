"""A precomputed cell embedding as a clustering-only row (e.g. scGPT's zero-shot embedding).

The scE2TM paper compares its clustering with the zero-shot embedding of the foundation model it
distils from (scGPT; ARI / NMI, section 2.6). Such an embedding has no topics: :func:`train` trains
nothing, it returns the embedding stored in the data's ``obsm`` as the run's ``cell_embedding``
(no ``topic_gene``, no ``cell_topic``), so the leaderboard scores it on ARI / NMI only, exactly as
it clusters the topic models' embeddings.

The key is ``embedding_key`` when given, else the first of :data:`KEYS` present
(``X_scgpt``, ``X_scGPT``); a dataset without one is an :class:`~topiceval.errors.InputError`
(the leaderboard reports the cell as skipped, with that reason).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from topiceval.adapters.registry import TrainParams, TrainResult
from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["KEYS", "train"]

#: ``obsm`` keys looked up, in order, when no ``embedding_key`` is given.
KEYS = ("X_scgpt", "X_scGPT")


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: the precomputed cell embedding of ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells, with the embedding in ``obsm`` (an expression matrix is not needed).
    params
        ``embedding_key`` (default: the first of :data:`KEYS` present); seed, topics and epochs
        are recorded and change nothing (there is no training).

    Returns
    -------
    TrainResult
        ``cell_embedding`` ``(n_cells, d)`` only; no ``save``.
    """
    started = time.perf_counter()
    key = params.embedding_key or next((k for k in KEYS if k in adata.obsm), None)
    if key is None or key not in adata.obsm:
        wanted = f"obsm[{params.embedding_key!r}]" if params.embedding_key else " or ".join(f"obsm[{k!r}]" for k in KEYS)
        raise InputError(f"no precomputed cell embedding in this dataset ({wanted}); its obsm has: "
                         f"{', '.join(map(str, adata.obsm)) or 'nothing'}")
    matrix = adata.obsm[key]
    matrix = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    name = key[2:].lower() if key.startswith("X_") else key
    outputs = TopicOutputs(topic_gene=None, cell_embedding=matrix.astype(np.float64), name=name,
                           metadata={"model": name, "embedding_key": key})
    hyper = {"embedding_key": key, "dim": int(matrix.shape[1]), "seed": params.seed}
    return TrainResult(outputs=outputs, hyperparameters=hyper,
                       info={"fit_s": time.perf_counter() - started, "trained": False})
