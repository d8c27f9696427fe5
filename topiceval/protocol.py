"""The model interface (:class:`TopicModel`) and the plain outputs every model becomes.

Scoring never needs a model object: any model, pair of arrays or set of files is turned into a
:class:`TopicOutputs` first, and every metric reads only that. Orientation is fixed here and
nowhere else: ``topic_gene`` is ``(n_topics, n_genes)``, ``cell_topic`` is ``(n_cells, n_topics)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from topiceval._utils import preview
from topiceval.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "ANNDATA_LAYOUTS",
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


#: AnnData layouts :meth:`TopicOutputs.from_anndata` recognises when no key is named, in order:
#: ``(what wrote it, varm key of the genes x topics matrix, obsm key of the cell-topic matrix,
#: obsm key of the cell embedding)``. ``{key}`` layouts are ``SCE2TM.write_to_adata(adata, key)``'s.
ANNDATA_LAYOUTS: tuple[tuple[str, str, str, str], ...] = (
    ("topiceval (write_outputs_h5ad, topiceval train's outputs.h5ad)", "topic_gene", "X_topic",
     "X_topic_embedding"),
    ("scE2TM (SCE2TM.write_to_adata)", "sce2tm_topic_gene", "X_sce2tm_topic", "X_sce2tm"),
)


@dataclass
class TopicOutputs:
    """Everything topiceval scores, as plain arrays.

    Parameters
    ----------
    topic_gene
        Topic-gene weights, ``(n_topics, n_genes)``. Any real scale (probabilities, logits,
        signed loadings); top genes are the largest values. ``None`` only for scoring a cell
        representation alone (clustering metrics).
    gene_names
        ``n_genes`` unique gene symbols in the column order of ``topic_gene`` (``None`` without it).
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
    obs
        Cell metadata (one row per cell), e.g. the ``obs`` of the AnnData the outputs were read
        from; ``evaluate(outputs, labels="cell_type")`` reads labels from it.

    Raises
    ------
    InputError
        Shapes that disagree, NaN or infinite values, duplicate or empty gene names, fewer than two
        topics, no matrix at all.
    """

    topic_gene: np.ndarray | None
    gene_names: np.ndarray | None = None
    cell_topic: np.ndarray | None = None
    cell_embedding: np.ndarray | None = None
    name: str = "model"
    metadata: dict[str, Any] = field(default_factory=dict)
    obs: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        n_topics = None
        if self.topic_gene is not None:
            self.topic_gene = check_matrix(self.topic_gene, "topic-gene matrix")
            n_topics, n_genes = self.topic_gene.shape
            if n_topics < 2:
                raise InputError(
                    f"the topic-gene matrix has {n_topics} topic(s); at least 2 are needed "
                    "(is it transposed? expected n_topics x n_genes)"
                )
            if self.gene_names is None:
                raise InputError("the topic-gene matrix needs gene_names (one per column)")
            self.gene_names = check_gene_names(self.gene_names, n_genes)
        elif self.cell_topic is None and self.cell_embedding is None:
            raise InputError("TopicOutputs needs a topic-gene matrix, a cell-topic matrix or a cell embedding")
        elif self.gene_names is not None:
            self.gene_names = check_gene_names(self.gene_names)
        if self.cell_topic is not None:
            self.cell_topic = check_matrix(self.cell_topic, "cell-topic matrix")
            if n_topics is not None and self.cell_topic.shape[1] != n_topics:
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
        if self.obs is not None and self.n_cells is not None and len(self.obs) != self.n_cells:
            self.obs = None  # obs of other cells (an outputs file without cell matrices) cannot label these
        self.name = str(self.name)

    @classmethod
    def from_anndata(
        cls,
        adata: AnnData,
        *,
        topic_gene_key: str | None = None,
        cell_topic_key: str | None = None,
        embedding_key: str | None = None,
        name: str | None = None,
    ) -> TopicOutputs:
        """The outputs stored in an AnnData (cells x genes), with the AnnData's ``obs``.

        Parameters
        ----------
        adata
            ``varm[topic_gene_key]`` ``(n_genes, n_topics)`` (scverse's orientation; genes are
            ``var_names``), ``obsm[cell_topic_key]`` ``(n_cells, n_topics)``,
            ``obsm[embedding_key]`` ``(n_cells, n_dims)``.
        topic_gene_key, cell_topic_key, embedding_key
            ``topic_gene_key=None`` (default): the first layout of :data:`ANNDATA_LAYOUTS` whose
            topic-gene key is in ``varm`` (topiceval's ``topic_gene`` / ``X_topic`` /
            ``X_topic_embedding``, then scE2TM's ``sce2tm_topic_gene`` / ``X_sce2tm_topic`` /
            ``X_sce2tm``), with its cell keys where present and not named; an
            ``uns["topic_gene"]`` ``(n_topics, n_genes)`` matrix is also read. A key you name must
            exist. Without any topic-gene matrix only the cell matrices are read
            (scoring an embedding alone: ``embedding_key="X_scGPT"``).
        name
            Model name (default ``uns["topiceval"]["name"]``, else ``"anndata"``).

        Notes
        -----
        Recipes for other tools' outputs are in the docs (docs/python.md): scvi-tools
        ``LinearSCVI.get_loadings()`` into ``varm``, scETM, cNMF files, a plain NMF.
        """
        import anndata

        if not isinstance(adata, anndata.AnnData):
            raise InputError(f"from_anndata needs an AnnData, got {type(adata).__name__}")

        def named(where: Any, key: str, what: str) -> np.ndarray:
            if key not in where:
                raise InputError(f"adata.{what} has no {key!r}; its keys: {preview(where.keys()) or 'none'}")
            return np.asarray(where[key])

        layout = None
        if topic_gene_key is None:
            layout = next((entry for entry in ANNDATA_LAYOUTS if entry[1] in adata.varm), None)
        source = {"source": "anndata"}
        beta = genes = None
        if topic_gene_key is not None:
            beta = named(adata.varm, topic_gene_key, "varm").T
            genes = list(map(str, adata.var_names))
            source["topic_gene_key"] = f"varm:{topic_gene_key}"
        elif layout is not None:
            beta = np.asarray(adata.varm[layout[1]]).T
            genes = list(map(str, adata.var_names))
            source.update(layout=layout[0], topic_gene_key=f"varm:{layout[1]}")
        elif "topic_gene" in adata.uns:
            beta = np.asarray(adata.uns["topic_gene"])
            genes = [str(g) for g in adata.uns.get("topic_gene_genes", adata.var_names)]
            source["topic_gene_key"] = "uns:topic_gene"

        def cell_matrix(key: str | None, slot: int) -> np.ndarray | None:
            """``obsm[key]``, else the found layout's ``obsm`` key at ``slot`` (topiceval's own
            layout when the topic-gene matrix came from elsewhere)."""
            if key is not None:
                return named(adata.obsm, key, "obsm")
            if layout is not None:
                default = layout[slot]
            elif beta is not None:
                default = ANNDATA_LAYOUTS[0][slot]
            else:
                return None
            return np.asarray(adata.obsm[default]) if default in adata.obsm else None

        theta = cell_matrix(cell_topic_key, 2)
        embedding = cell_matrix(embedding_key, 3)
        if beta is None and theta is None and embedding is None:
            known = ", ".join(f"varm[{entry[1]!r}]" for entry in ANNDATA_LAYOUTS)
            raise InputError(
                f"the AnnData holds no topic-model outputs: none of {known} or uns['topic_gene']; name "
                f"the keys (topic_gene_key=..., cell_topic_key=..., embedding_key=...). varm: "
                f"{preview(adata.varm.keys()) or 'none'}; obsm: {preview(adata.obsm.keys()) or 'none'}"
            )
        for key, value in (("cell_topic_key", cell_topic_key), ("embedding_key", embedding_key)):
            if value is not None:
                source[key] = f"obsm:{value}"
        info: Any = adata.uns.get("topiceval", {})
        default_name = str(info.get("name", "anndata")) if isinstance(info, Mapping) else "anndata"
        return cls(
            topic_gene=beta,
            gene_names=None if genes is None else np.asarray(genes, dtype=object),
            cell_topic=theta,
            cell_embedding=embedding,
            name=name or default_name,
            metadata=source,
            obs=adata.obs.copy(),
        )

    @property
    def n_topics(self) -> int | None:
        """Number of topics K (``None`` for a cell embedding alone)."""
        if self.topic_gene is not None:
            return int(self.topic_gene.shape[0])
        return None if self.cell_topic is None else int(self.cell_topic.shape[1])

    @property
    def n_genes(self) -> int | None:
        """Number of genes V (``None`` without a topic-gene matrix)."""
        return None if self.topic_gene is None else int(self.topic_gene.shape[1])

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
