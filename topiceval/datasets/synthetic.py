"""Synthetic counts from a known topic model whose topics are real gene sets.

:func:`synthetic` draws a dataset whose truth is known: each topic is one gene set of a real
collection (Hallmark by default) over real gene symbols, each cell type leans on its own topic, and
counts are Poisson draws around ``library_size x (cell-topic @ topic-gene)``. :func:`true_outputs`
returns the generating model as :class:`~topiceval.TopicOutputs`, so a test can check that the
metrics rank a perfect model above a scrambled one, end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from topiceval.errors import InputError
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from topiceval.gene_sets import GeneSets

__all__ = ["SYNTHETIC_KEY", "synthetic", "true_outputs"]

#: ``uns`` key with the generator's parameters and the topic gene-set names.
SYNTHETIC_KEY = "synthetic"
TOPIC_GENE_KEY = "true_topic_gene"
CELL_TOPIC_KEY = "true_cell_topic"


def synthetic(
    n_cells: int = 600,
    n_cell_types: int = 6,
    n_topics: int = 10,
    *,
    gene_sets: GeneSets | str = "hallmark",
    topic_sets: Sequence[str] | None = None,
    n_background_genes: int = 500,
    min_set_size: int = 30,
    library_size: float = 5000.0,
    library_sd: float = 0.5,
    dominant: float = 5.0,
    concentration: float = 0.2,
    background: float = 0.05,
    seed: int | None = 0,
) -> AnnData:
    """Draw a count matrix from a topic model whose topics are real gene sets.

    Generative model (all draws from ``numpy.random.default_rng(seed)``):

    * vocabulary: the genes of the ``n_topics`` topic sets plus ``n_background_genes`` other genes
      of the collection, sorted by symbol;
    * topic ``k`` over genes: Gamma(1)-distributed weights on the members of gene set ``k``
      (mass ``1 - background``) plus a Dirichlet(1) spread of mass ``background`` over every gene;
    * cell types ``c = 0..n_cell_types-1`` of (near) equal size, in random order; cell type ``c``
      has the Dirichlet prior ``concentration`` on every topic plus ``dominant`` on topic ``c``;
    * cell ``i``: topic proportions ``theta_i ~ Dirichlet(prior of its type)``, library size
      ``L_i ~ LogNormal(log(library_size), library_sd)``, counts
      ``x_ij ~ Poisson(L_i * sum_k theta_ik * beta_kj)``.

    Parameters
    ----------
    n_cells, n_cell_types, n_topics
        Sizes; ``n_cell_types <= n_topics``.
    gene_sets
        Collection whose sets become topics (:func:`topiceval.gene_sets.load` spec, symbols kept
        as written).
    topic_sets
        Names of the sets to use as topics (default: ``n_topics`` sets of at least
        ``min_set_size`` genes, drawn at random).
    n_background_genes
        Extra genes of the collection in no topic set.
    min_set_size
        Smallest set eligible as a topic.
    library_size, library_sd
        Median and log-scale spread of the library sizes.
    dominant, concentration
        Dirichlet prior of a cell type: ``dominant`` on its own topic, ``concentration`` on all.
    background
        Share of each topic spread over all genes.
    seed
        Seed of the generator; the same seed gives the same data.

    Returns
    -------
    AnnData
        ``(n_cells, n_genes)`` counts as ``float32`` CSR; ``obs["cell_type"]`` (categorical,
        ``type0``...), ``obs["dominant_topic"]``; ``varm["true_topic_gene"]`` ``(n_genes, n_topics)``;
        ``obsm["true_cell_topic"]`` ``(n_cells, n_topics)``; ``uns["synthetic"]`` the parameters
        and ``topic_sets`` (the set name of each topic).
    """
    import anndata

    from topiceval.gene_sets import load

    if n_cell_types < 1 or n_topics < 2 or n_cells < n_cell_types:
        raise InputError(
            f"need n_topics >= 2, n_cell_types >= 1 and n_cells >= n_cell_types; got "
            f"{n_topics}, {n_cell_types}, {n_cells}"
        )
    if n_cell_types > n_topics:
        raise InputError(f"n_cell_types ({n_cell_types}) cannot exceed n_topics ({n_topics})")
    if not 0 <= background < 1:
        raise InputError(f"background must be in [0, 1), got {background}")
    rng = np.random.default_rng(seed)
    collection = load(gene_sets, case="exact")
    sizes = np.asarray(collection.sizes)
    if topic_sets is None:
        eligible = np.flatnonzero(sizes >= min_set_size)
        if len(eligible) < n_topics:
            raise InputError(
                f"only {len(eligible)} sets of {collection.source or 'the collection'} have at least "
                f"{min_set_size} genes; {n_topics} topics were asked for"
            )
        chosen = np.sort(rng.choice(eligible, size=n_topics, replace=False))
    else:
        missing = [s for s in topic_sets if s not in collection]
        if missing:
            raise InputError(f"topic_sets not in the collection: {missing[:5]}")
        if len(topic_sets) != n_topics:
            raise InputError(f"{len(topic_sets)} topic_sets given for n_topics = {n_topics}")
        chosen = collection.names.get_indexer(list(topic_sets))
    membership = collection.membership.tocsr()
    topic_members = [membership.indices[membership.indptr[s] : membership.indptr[s + 1]] for s in chosen]
    in_topics = np.unique(np.concatenate(topic_members))
    others = np.setdiff1d(np.arange(collection.n_genes), in_topics)
    extra = rng.choice(others, size=min(n_background_genes, len(others)), replace=False)
    columns = np.concatenate([in_topics, extra])
    symbols = np.asarray(collection.genes[columns], dtype=object)
    order = np.argsort(symbols.astype(str), kind="stable")
    columns, symbols = columns[order], symbols[order]
    position = pd.Series(np.arange(len(columns)), index=columns)
    n_genes = len(columns)

    beta = np.zeros((n_topics, n_genes))
    for k, members in enumerate(topic_members):
        where = position.loc[members].to_numpy()
        weights = rng.gamma(1.0, size=len(where))
        beta[k, where] = (1 - background) * weights / weights.sum()
    beta += background * rng.dirichlet(np.ones(n_genes), size=n_topics)

    types = rng.permutation(np.arange(n_cells) % n_cell_types)
    prior = np.full((n_cell_types, n_topics), float(concentration))
    prior[np.arange(n_cell_types), np.arange(n_cell_types)] += dominant
    theta = np.vstack([rng.dirichlet(prior[c]) for c in types])
    libraries = rng.lognormal(np.log(library_size), library_sd, size=n_cells)

    blocks = []
    for start in range(0, n_cells, 1024):
        stop = min(start + 1024, n_cells)
        rate = libraries[start:stop, None] * (theta[start:stop] @ beta)
        blocks.append(sp.csr_matrix(rng.poisson(rate).astype(np.float32)))
    counts = sp.vstack(blocks, format="csr")

    names = [str(n) for n in collection.names[chosen]]
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([f"type{c}" for c in types], categories=[f"type{c}" for c in range(n_cell_types)]),
            "dominant_topic": pd.Categorical([names[c] for c in types], categories=names[:n_cell_types]),
        },
        index=[f"cell{i:05d}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=pd.Index(symbols.astype(str), name=None))
    var["in_topic_set"] = np.isin(columns, in_topics)
    adata = anndata.AnnData(X=counts, obs=obs, var=var)
    adata.varm[TOPIC_GENE_KEY] = beta.T
    adata.obsm[CELL_TOPIC_KEY] = theta
    adata.uns[SYNTHETIC_KEY] = {
        "topic_sets": names,
        "gene_sets": collection.source or "custom",
        "seed": -1 if seed is None else int(seed),
        "n_cells": int(n_cells),
        "n_cell_types": int(n_cell_types),
        "n_topics": int(n_topics),
        "n_background_genes": len(extra),
        "library_size": float(library_size),
        "library_sd": float(library_sd),
        "dominant": float(dominant),
        "concentration": float(concentration),
        "background": float(background),
    }
    adata.uns["topiceval_read"] = {"format": "synthetic", "label_key": "cell_type"}
    return adata


def true_outputs(adata: AnnData, *, name: str = "truth", **metadata: Any) -> TopicOutputs:
    """The generating model of a :func:`synthetic` dataset as :class:`~topiceval.TopicOutputs`.

    ``topic_gene`` is ``varm["true_topic_gene"].T`` ``(n_topics, n_genes)``, ``cell_topic`` is
    ``obsm["true_cell_topic"]``; gene names are ``var_names`` (so a gene subset of the AnnData
    gives the matching subset of the truth).
    """
    if TOPIC_GENE_KEY not in adata.varm or CELL_TOPIC_KEY not in adata.obsm:
        raise InputError("this AnnData was not made by topiceval.datasets.synthetic (no true topics)")
    return TopicOutputs(
        topic_gene=np.asarray(adata.varm[TOPIC_GENE_KEY]).T,
        gene_names=np.asarray(adata.var_names, dtype=object),
        cell_topic=np.asarray(adata.obsm[CELL_TOPIC_KEY]),
        name=name,
        metadata={"topic_sets": list(adata.uns.get(SYNTHETIC_KEY, {}).get("topic_sets", [])), **metadata},
    )
