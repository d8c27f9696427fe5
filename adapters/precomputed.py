"""Outputs of models topiceval does not run: files (CSV / TSV / .npy / .h5ad) or an AnnData.

:class:`PrecomputedAdapter` is a :class:`~topiceval.protocol.TopicModel` over outputs computed
elsewhere, so that they are scored exactly like a model trained here. Files are read by
:func:`topiceval.io.read_outputs` (the one reader of topiceval's matrix and h5ad layouts); an
in-memory AnnData is read from the keys of :data:`topiceval.io.H5AD_KEYS` or keys you name.

Examples
--------
>>> from topiceval.adapters import PrecomputedAdapter
>>> model = PrecomputedAdapter.from_files("beta.csv", cell_topic="theta.npy", name="mine")  # doctest: +SKIP
>>> te.evaluate(model.outputs(), gene_sets="hallmark", labels=labels)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from topiceval._utils import preview
from topiceval.errors import InputError
from topiceval.io import H5AD_KEYS, read_outputs
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
        topic_gene_key: str = H5AD_KEYS["topic_gene_varm"],
        cell_topic_key: str | None = H5AD_KEYS["cell_topic"],
        cell_embedding_key: str | None = H5AD_KEYS["cell_embedding"],
        name: str | None = None,
    ) -> PrecomputedAdapter:
        """Outputs stored in an AnnData by a model run elsewhere.

        Parameters
        ----------
        adata
            Cells x genes with ``varm[topic_gene_key]`` ``(n_genes, n_topics)`` (scverse's
            orientation; e.g. LDVAE loadings written there) and optionally
            ``obsm[cell_topic_key]`` ``(n_cells, n_topics)`` and ``obsm[cell_embedding_key]``.
            A key that is not there is skipped unless it was named explicitly.
        name
            Model name (default ``uns["topiceval"]["name"]`` or ``"precomputed"``).
        """
        import anndata

        if not isinstance(adata, anndata.AnnData):
            raise InputError(f"from_anndata needs an AnnData, got {type(adata).__name__}")
        if topic_gene_key not in adata.varm:
            raise InputError(
                f"adata.varm has no {topic_gene_key!r} (genes x topics); its keys: "
                f"{preview(adata.varm.keys()) or 'none'}"
            )
        beta = np.asarray(adata.varm[topic_gene_key]).T

        def cells(key: str | None, default: str) -> np.ndarray | None:
            if key is None:
                return None
            if key in adata.obsm:
                return np.asarray(adata.obsm[key])
            if key != default:
                raise InputError(f"adata.obsm has no {key!r}; its keys: {preview(adata.obsm.keys()) or 'none'}")
            return None

        info: Any = adata.uns.get(H5AD_KEYS["uns"], {})
        default_name = str(info.get("name", "precomputed")) if isinstance(info, dict) else "precomputed"
        return cls(TopicOutputs(
            topic_gene=beta,
            gene_names=np.asarray([str(g) for g in adata.var_names], dtype=object),
            cell_topic=cells(cell_topic_key, H5AD_KEYS["cell_topic"]),
            cell_embedding=cells(cell_embedding_key, H5AD_KEYS["cell_embedding"]),
            name=name or default_name,
            metadata={"source": "anndata", "topic_gene_key": topic_gene_key},
        ))

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
