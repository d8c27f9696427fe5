"""Gene-pathway prior of d-scIGM's masked encoder: which gene feeds which pathway unit.

No torch here: the mask is a sparse boolean matrix built from a
:class:`~topiceval.gene_sets.GeneSets` collection (the shipped ``"reactome"`` by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from topiceval.errors import InputError

__all__ = ["PathwayMask", "pathway_mask"]


@dataclass
class PathwayMask:
    """Connections of the first encoder layer.

    Attributes
    ----------
    mask
        ``(n_genes, n_pathways)`` CSR of booleans: gene ``g`` feeds pathway unit ``p`` iff
        ``mask[g, p]``.
    pathways
        The ``n_pathways`` set names, in column order.
    source
        Where the sets came from (collection name / file), for the model's settings.
    n_genes_covered
        Model genes that belong to at least one kept pathway.
    """

    mask: sp.csr_matrix
    pathways: list[str]
    source: str | None
    n_genes_covered: int

    @property
    def n_pathways(self) -> int:
        """Number of pathway units."""
        return len(self.pathways)


def pathway_mask(
    gene_names: Sequence[str],
    gene_sets: object = "reactome",
    *,
    min_genes: int = 5,
    max_genes: int | None = None,
) -> PathwayMask:
    """Gene -> pathway connections for the model's genes.

    Parameters
    ----------
    gene_names
        The model's ``n_genes`` genes, in input order.
    gene_sets
        Anything :func:`topiceval.gene_sets.load` accepts (default: the shipped Reactome
        collection, C2:CP:Reactome v2022.1, as the authors used).
    min_genes, max_genes
        Keep pathways with at least ``min_genes`` (and at most ``max_genes``) of the model's genes.

    Returns
    -------
    PathwayMask

    Raises
    ------
    InputError
        No pathway keeps ``min_genes`` model genes (species or identifier mismatch, too few genes).
    """
    from topiceval.gene_sets import load

    collection = load(gene_sets)
    names = list(gene_names)
    index = collection.gene_index(names)
    known = np.flatnonzero(index >= 0)
    membership = collection.membership.tocsc()[:, index[known]].tocsr()  # sets x known genes
    sizes = np.asarray(membership.sum(axis=1)).reshape(-1)
    keep = sizes >= min_genes
    if max_genes is not None:
        keep &= sizes <= max_genes
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise InputError(
            f"no gene set of {collection.source or 'the collection'} holds {min_genes} or more of the "
            f"{len(names)} model genes ({known.size} of them appear in it at all): wrong species or "
            "identifiers, or lower min_genes"
        )
    kept = membership[rows].astype(bool)  # pathways x known genes
    # scatter the known genes back to their positions among all model genes
    mask = sp.csr_matrix(
        (np.ones(kept.nnz, dtype=bool), (known[kept.indices], np.repeat(np.arange(rows.size), np.diff(kept.indptr)))),
        shape=(len(names), rows.size),
    )
    covered = int((np.asarray(mask.sum(axis=1)).reshape(-1) > 0).sum())
    return PathwayMask(mask=mask, pathways=[str(collection.names[i]) for i in rows],
                       source=collection.source, n_genes_covered=covered)
