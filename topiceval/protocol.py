"""The model interface (:class:`TopicModel`) and the plain outputs every model becomes.

Scoring never needs a model object: any model, pair of arrays or set of files is turned into a
:class:`TopicOutputs` first, and every metric reads only that. Orientation is fixed here and
nowhere else: ``topic_gene`` is ``(n_topics, n_genes)``, ``cell_topic`` is ``(n_cells, n_topics)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from topiceval._utils import preview
from topiceval.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "TopicModel",
    "TrainableTopicModel",
    "TopicOutputs",
    "as_outputs",
    "check_finite",
    "check_gene_names",
    "check_labels",
    "check_top_n",
]


@runtime_checkable
class TopicModel(Protocol):
    """What topiceval needs from a single-cell topic model.

    Attributes
    ----------
    name
        A short name used in reports.
    gene_names
        The ``n_genes`` gene symbols, in the column order of :meth:`topic_gene`.

    Notes
    -----
    A model may also offer ``fit(adata, ...)`` (see :class:`TrainableTopicModel`); scoring never
    calls it. A model with a cell representation that is not a simplex (an encoder mean, a latent
    space) may also expose ``cell_embedding(adata)``; clustering then uses it.
    """

    name: str
    gene_names: Sequence[str]

    def topic_gene(self) -> np.ndarray:
        """Topic-gene weights, ``(n_topics, n_genes)``."""
        ...

    def cell_topic(self, adata: AnnData) -> np.ndarray:
        """Cell-topic weights for the cells of ``adata``, ``(n_cells, n_topics)``."""
        ...


@runtime_checkable
class TrainableTopicModel(TopicModel, Protocol):
    """A :class:`TopicModel` that can be trained on an AnnData."""

    def fit(self, adata: AnnData, **kwargs: Any) -> Any:
        """Train on ``adata``; returns the model."""
        ...


def check_finite(array: np.ndarray, what: str) -> None:
    """Raise :class:`InputError` naming ``what`` if ``array`` holds NaN or infinity."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan = int(np.isnan(array).sum())
        n_inf = int(bad.sum()) - n_nan
        raise InputError(
            f"{what} holds {n_nan} NaN and {n_inf} infinite value(s); the first at index {first}"
        )


def check_gene_names(gene_names: Sequence[str] | np.ndarray, n_genes: int | None = None) -> np.ndarray:
    """Validate gene names: strings, none empty, no duplicates, ``n_genes`` of them.

    Returns them as a numpy array of ``str``.
    """
    names = np.asarray(list(gene_names), dtype=object)
    if names.ndim != 1:
        raise InputError(f"gene names must be a flat list, got shape {names.shape}")
    not_str = [i for i, name in enumerate(names) if not isinstance(name, str)]
    if not_str:
        raise InputError(
            f"gene names must be strings; entries {preview(not_str)} are not "
            f"(e.g. {names[not_str[0]]!r})"
        )
    names = names.astype(str)
    empty = np.flatnonzero(np.char.str_len(np.char.strip(names)) == 0) if names.size else []
    if len(empty):
        raise InputError(f"{len(empty)} gene name(s) are empty, at positions {preview(empty)}")
    counts = pd.Series(names).value_counts()
    duplicated = counts[counts > 1]
    if len(duplicated):
        raise InputError(
            f"{len(duplicated)} gene name(s) occur more than once: "
            f"{preview(f'{g} (x{c})' for g, c in duplicated.items())}"
        )
    if n_genes is not None and names.size != n_genes:
        raise InputError(
            f"{names.size} gene names were given but the topic-gene matrix has {n_genes} "
            "gene columns"
        )
    return names


def check_top_n(top_n: int, n_genes: int) -> int:
    """Validate the number of top genes per topic against the vocabulary size."""
    if isinstance(top_n, bool) or not isinstance(top_n, int | np.integer):
        raise InputError(f"top_n must be an integer, got {top_n!r}")
    if top_n < 2:
        raise InputError(f"top_n must be at least 2 (a topic needs a pair of genes), got {top_n}")
    if top_n > n_genes:
        raise InputError(f"top_n = {top_n} is larger than the number of genes ({n_genes})")
    return int(top_n)


def check_labels(labels: Sequence[Any] | np.ndarray | pd.Series, n_cells: int) -> np.ndarray:
    """Validate cell labels against the number of cells; returns an object array.

    Missing labels (None / NaN) are kept as ``None``; metrics decide how to treat them.
    """
    values = labels.to_numpy() if isinstance(labels, pd.Series | pd.Index) else np.asarray(labels, dtype=object)
    values = np.asarray(values, dtype=object)
    if values.ndim != 1:
        raise InputError(f"labels must be a flat list, got shape {values.shape}")
    if values.size != n_cells:
        raise InputError(f"{values.size} labels were given for {n_cells} cells")
    return np.array([None if _is_missing(v) else v for v in values], dtype=object)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def check_matrix(array: Any, what: str) -> np.ndarray:
    """``array`` as a float64 matrix; :class:`InputError` naming ``what`` unless numeric, 2-d, finite."""
    try:
        matrix = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numeric: {exc}") from None
    if matrix.ndim != 2:
        raise InputError(f"{what} must be 2-d, got shape {matrix.shape}")
    check_finite(matrix, what)
    return matrix


@dataclass
class TopicOutputs:
    """Everything topiceval scores, as plain arrays.

    Parameters
    ----------
    topic_gene
        Topic-gene weights, ``(n_topics, n_genes)``. Any real scale (probabilities, logits,
        signed loadings); top genes are the largest values.
    gene_names
        ``n_genes`` unique gene symbols in the column order of ``topic_gene``.
    cell_topic
        Cell-topic weights, ``(n_cells, n_topics)``, or ``None``. Interpretation purity uses its
        argmax per cell.
    cell_embedding
        A cell representation for clustering, ``(n_cells, n_dims)``, or ``None`` (then clustering
        uses ``cell_topic``). scE2TM's reference clusters the encoder mean, not the proportions.
    name
        A short model name used in reports.
    metadata
        Free-form JSON-serialisable facts about the run (seed, epochs, source files).

    Raises
    ------
    InputError
        Shapes that disagree, NaN or infinite values, duplicate or empty gene names, fewer than two
        topics.
    """

    topic_gene: np.ndarray
    gene_names: np.ndarray
    cell_topic: np.ndarray | None = None
    cell_embedding: np.ndarray | None = None
    name: str = "model"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.topic_gene = check_matrix(self.topic_gene, "topic-gene matrix")
        n_topics, n_genes = self.topic_gene.shape
        if n_topics < 2:
            raise InputError(
                f"the topic-gene matrix has {n_topics} topic(s); at least 2 are needed "
                "(is it transposed? expected n_topics x n_genes)"
            )
        self.gene_names = check_gene_names(self.gene_names, n_genes)
        if self.cell_topic is not None:
            self.cell_topic = check_matrix(self.cell_topic, "cell-topic matrix")
            if self.cell_topic.shape[1] != n_topics:
                hint = " (is it transposed? expected n_cells x n_topics)" if self.cell_topic.shape[0] == n_topics else ""
                raise InputError(
                    f"the cell-topic matrix has {self.cell_topic.shape[1]} topic columns but the "
                    f"topic-gene matrix has {n_topics} topics{hint}"
                )
        if self.cell_embedding is not None:
            self.cell_embedding = check_matrix(self.cell_embedding, "cell embedding")
            if self.cell_topic is not None and self.cell_embedding.shape[0] != self.cell_topic.shape[0]:
                raise InputError(
                    f"the cell embedding has {self.cell_embedding.shape[0]} cells but the "
                    f"cell-topic matrix has {self.cell_topic.shape[0]}"
                )
        self.name = str(self.name)

    @property
    def n_topics(self) -> int:
        """Number of topics K."""
        return int(self.topic_gene.shape[0])

    @property
    def n_genes(self) -> int:
        """Number of genes V."""
        return int(self.topic_gene.shape[1])

    @property
    def n_cells(self) -> int | None:
        """Number of cells, or ``None`` without a cell matrix."""
        for matrix in (self.cell_topic, self.cell_embedding):
            if matrix is not None:
                return int(matrix.shape[0])
        return None

    @classmethod
    def from_model(cls, model: TopicModel, adata: AnnData | None = None) -> TopicOutputs:
        """Collect a model's outputs; cell matrices only when ``adata`` is given."""
        if not isinstance(model, TopicModel):
            raise InputError(
                f"{type(model).__name__} is not a TopicModel: it needs name, gene_names, "
                "topic_gene() and cell_topic(adata)"
            )
        cell_topic = cell_embedding = None
        if adata is not None:
            cell_topic = model.cell_topic(adata)
            embed = getattr(model, "cell_embedding", None)
            if callable(embed):
                cell_embedding = embed(adata)
        return cls(
            topic_gene=model.topic_gene(),
            gene_names=np.asarray(list(model.gene_names)),
            cell_topic=cell_topic,
            cell_embedding=cell_embedding,
            name=getattr(model, "name", type(model).__name__),
        )


def as_outputs(obj: TopicOutputs | TopicModel, adata: AnnData | None = None) -> TopicOutputs:
    """Turn a model or outputs into :class:`TopicOutputs` (outputs pass through unchanged)."""
    if isinstance(obj, TopicOutputs):
        return obj
    return TopicOutputs.from_model(obj, adata)
