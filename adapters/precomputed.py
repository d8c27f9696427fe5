"""Outputs of models topiceval does not run: files (CSV / TSV / .npy / .h5ad) or an AnnData.

:class:`PrecomputedAdapter` is a :class:`~topiceval.protocol.TopicModel` over outputs computed
elsewhere, so that they are scored exactly like a model trained here. Files are read by
:func:`topiceval.io.read_outputs` (the one reader of topiceval's matrix and h5ad layouts); an
in-memory AnnData by :meth:`topiceval.TopicOutputs.from_anndata` (topiceval's and scE2TM's keys by
default, or keys you name).

Examples
--------
>>> from topiceval.adapters import PrecomputedAdapter
>>> model = PrecomputedAdapter.from_files("beta.csv", cell_topic="theta.npy", name="mine")  # doctest: +SKIP
>>> te.evaluate(model.outputs(), gene_sets="hallmark", labels=labels)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from topiceval._utils import preview
from topiceval.errors import InputError
from topiceval.io import read_outputs
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["PrecomputedAdapter"]

PathLike = str | os.PathLike


class PrecomputedAdapter:
    """A :class:`~topiceval.protocol.TopicModel` backed by precomputed outputs.

    Parameters
    ----------
    outputs
        The outputs (use :meth:`from_files` or :meth:`from_anndata` to read them).

    Notes
    -----
    ``cell_topic(adata)`` and ``cell_embedding(adata)`` return the stored matrices for the cells
    they were computed on: ``adata`` must have the same number of cells (in the same order); there
    is no model to apply to new cells.
    """

    def __init__(self, outputs: TopicOutputs) -> None:
        if not isinstance(outputs, TopicOutputs):
            raise InputError(f"PrecomputedAdapter needs TopicOutputs, got {type(outputs).__name__}")
        self._outputs = outputs
        self.name = outputs.name
        self.gene_names = list(outputs.gene_names)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_files(
        cls,
        topic_gene: PathLike,
        *,
        gene_names: PathLike | Sequence[str] | None = None,
        cell_topic: PathLike | None = None,
        cell_embedding: PathLike | None = None,
        name: str | None = None,
    ) -> PrecomputedAdapter:
        """Read outputs from files with :func:`topiceval.io.read_outputs`.

        Parameters
        ----------
        topic_gene
            ``(n_topics, n_genes)`` matrix file (CSV / TSV with a header of gene names, ``.npy``,
            optionally gzipped) or an ``.h5ad`` in topiceval's layout (``varm["topic_gene"]``,
            ``obsm["X_topic"]``, ``obsm["X_topic_embedding"]``), such as ``DIR/outputs.h5ad`` of
            ``topiceval train``.
        gene_names
            Gene list file or list, when the topic-gene file has no header.
        cell_topic, cell_embedding
            ``(n_cells, n_topics)`` and ``(n_cells, n_dims)`` matrix files.
        name
            Model name (default: from the file).
        """
        return cls(read_outputs(topic_gene, gene_names=gene_names, cell_topic=cell_topic,
                                cell_embedding=cell_embedding, name=name))

    @classmethod
    def from_anndata(
        cls,
        adata: AnnData,
        *,
        topic_gene_key: str | None = None,
        cell_topic_key: str | None = None,
        cell_embedding_key: str | None = None,
        name: str | None = None,
    ) -> PrecomputedAdapter:
        """Outputs stored in an AnnData by a model run elsewhere.

        Reads them with :meth:`TopicOutputs.from_anndata <topiceval.protocol.TopicOutputs.from_anndata>`
        (``cell_embedding_key`` is its ``embedding_key``): ``None`` keys find topiceval's layout
        (``varm["topic_gene"]``, ``obsm["X_topic"]``, ``obsm["X_topic_embedding"]``) or
        scE2TM's (``varm["sce2tm_topic_gene"]``, ``obsm["X_sce2tm_topic"]``, ``obsm["X_sce2tm"]``);
        a key you name must exist. A topic-gene matrix is required here.
        """
        outputs = TopicOutputs.from_anndata(adata, topic_gene_key=topic_gene_key, cell_topic_key=cell_topic_key,
                                            embedding_key=cell_embedding_key, name=name)
        if outputs.topic_gene is None:
            raise InputError(
                f"adata.varm has no topic-gene matrix (genes x topics); name it with topic_gene_key; its keys: "
                f"{preview(adata.varm.keys()) or 'none'}"
            )
        if name is None and outputs.name == "anndata":
            outputs = dataclasses.replace(outputs, name="precomputed")
        return cls(outputs)

    # ------------------------------------------------------------------ TopicModel
    def outputs(self) -> TopicOutputs:
        """The stored :class:`~topiceval.protocol.TopicOutputs`."""
        return self._outputs

    def topic_gene(self) -> np.ndarray:
        """``(n_topics, n_genes)``."""
        return self._outputs.topic_gene

    def _cells(self, matrix: np.ndarray | None, adata: AnnData | None, what: str) -> np.ndarray | None:
        if matrix is None:
            return None
        if adata is not None and adata.n_obs != matrix.shape[0]:
            raise InputError(
                f"the precomputed {what} of {self.name!r} covers {matrix.shape[0]} cells but the "
                f"AnnData has {adata.n_obs}: precomputed outputs cannot be applied to other cells"
            )
        return matrix

    def cell_topic(self, adata: AnnData | None = None) -> np.ndarray | None:
        """``(n_cells, n_topics)`` for the cells the outputs were computed on, or ``None``."""
        return self._cells(self._outputs.cell_topic, adata, "cell-topic matrix")

    def cell_embedding(self, adata: AnnData | None = None) -> np.ndarray | None:
        """``(n_cells, n_dims)`` or ``None`` when none was given."""
        return self._cells(self._outputs.cell_embedding, adata, "cell embedding")

    def __repr__(self) -> str:
        o = self._outputs
        return (f"PrecomputedAdapter({self.name!r}: {o.n_topics} topics x {o.n_genes} genes, "
                f"cells: {o.n_cells})")
