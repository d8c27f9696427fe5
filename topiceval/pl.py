"""Plots for notebooks and reports: ``topiceval.pl``, in the manner of ``scanpy.pl``.

Every function draws what topiceval has already computed; none of them computes a metric. They
read an :class:`~topiceval.Evaluation` (or an AnnData holding one, written by
:meth:`~topiceval.Evaluation.to_uns`), a :class:`~topiceval.TopicOutputs` (or an AnnData holding
the matrices) or leaderboard :class:`~topiceval.leaderboard.Results`.

===========================  =======================================================  ==========
function                     shows                                                    reads
===========================  =======================================================  ==========
:func:`top_genes`            topic-gene weights of each topic's top genes (heatmap)   outputs
:func:`enrichment`           topics x pathways dotplot of the ORA or GSEA table       evaluation
:func:`gsea_running_sum`     the GSEA running sum of one (topic, pathway), hit ticks  outputs
:func:`cell_types`           topics x cell types: mean topic proportion per type      outputs
:func:`metrics`              every score of one evaluation                            evaluation
:func:`results_table`        a leaderboard's models x metrics (scib-metrics style)    results
:func:`critical_difference`  Friedman / Nemenyi critical-difference diagram           statistics
:func:`stability`            topic stability of every pair of seeds, per model         results
===========================  =======================================================  ==========

Common keywords, as scanpy's: ``ax=`` draws into an existing Axes (else a new figure is made with
pyplot), ``show=True`` calls ``pyplot.show()``, ``save=PATH`` writes the figure. Every function
returns what it drew into (the Axes, or the Figure for :func:`metrics`), also when shown or saved.

Matplotlib is the only plotting dependency (``pip install "topiceval[report]"``). The leaderboard's
HTML report draws its results tables with :func:`results_table` and its critical-difference
diagrams with :func:`critical_difference`.

Statistics plots
----------------
The critical-difference diagram of the leaderboard statistics is :func:`critical_difference`;
the topic stability over seed pairs (``stability.csv``) is :func:`stability`. Nothing in this
module imports :mod:`topiceval.leaderboard.statistics`: both read the tables it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from topiceval.errors import InputError, TopicEvalError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from topiceval.evaluate import Evaluation
    from topiceval.gene_sets import GeneSets
    from topiceval.leaderboard.runner import Results
    from topiceval.protocol import TopicOutputs

__all__ = ["cell_types", "critical_difference", "enrichment", "gsea_running_sum", "metrics", "results_table", "stability",
           "top_genes"]

#: Score keys whose values lie in [-1, 1] (drawn on one shared axis by :func:`metrics`); every
#: other key (``*_N``, ``*_Q``: counts of pathways) is drawn on its own axis.
BOUNDED_SUFFIXES = ("_U",)
BOUNDED_KEYS = ("TC", "TD", "TQ", "IP", "ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW")


# --------------------------------------------------------------------------- helpers
def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise TopicEvalError('topiceval.pl needs matplotlib: pip install "topiceval[report]"') from None
    return plt


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def _finish(fig: Figure, show: bool | None, save: str | Path | None) -> None:
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    if show:
        _pyplot().show()


def _evaluation(data: Evaluation | AnnData, key: str = "topiceval") -> Evaluation:
    from topiceval.evaluate import Evaluation

    if isinstance(data, Evaluation):
        return data
    if hasattr(data, "uns") and hasattr(data, "obsm"):
        return Evaluation.from_uns(data, key)
    raise InputError(f"expected an Evaluation or an AnnData with uns[{key!r}], got {type(data).__name__}")


def _outputs(data: TopicOutputs | AnnData, topic_gene_key: str | None = None,
             cell_topic_key: str | None = None) -> TopicOutputs:
    from topiceval.protocol import TopicOutputs

    if isinstance(data, TopicOutputs):
        return data
    if hasattr(data, "varm") and hasattr(data, "obsm"):
        return TopicOutputs.from_anndata(data, topic_gene_key=topic_gene_key, cell_topic_key=cell_topic_key)
    raise InputError(f"expected TopicOutputs or an AnnData, got {type(data).__name__}")


def _topics(selected: Sequence[int] | None, n_topics: int) -> list[int]:
    if selected is None:
        return list(range(n_topics))
    chosen = [int(t) for t in selected]
    bad = [t for t in chosen if not 0 <= t < n_topics]
    if bad:
        raise InputError(f"topic(s) {bad} out of range: the model has {n_topics} topics (0..{n_topics - 1})")
    return chosen


# --------------------------------------------------------------------------- top genes
def top_genes(
    data: TopicOutputs | AnnData,
    n_genes: int = 5,
    *,
    topics: Sequence[int] | None = None,
    standard_scale: bool = True,
    topic_gene_key: str | None = None,
    cmap: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """Heatmap of the topic-gene weights of each topic's top genes.

    Rows are topics; columns are the ``n_genes`` largest-weight genes of each topic in turn
    (a gene that is a top gene of several topics appears once, under the first), so a diagonal
    block structure means distinct topics.

    Parameters
    ----------
    data
        :class:`~topiceval.TopicOutputs`, or an AnnData read with
        :meth:`TopicOutputs.from_anndata <topiceval.TopicOutputs.from_anndata>`.
    n_genes
        Top genes per topic (ties go to the lower gene index, as every metric orders them).
    topics
        Topics to show (default: all).
    standard_scale
        Divide each topic's row by its largest absolute weight over the shown genes, so rows are
        comparable (colour range [0, 1] for non-negative weights); ``False`` shows raw weights.
    topic_gene_key
        ``varm`` key when ``data`` is an AnnData.
    cmap
        Matplotlib colour map (default ``"Reds"``; ``"RdBu_r"`` centred on 0 when a shown weight is
        negative, as LDVAE's signed loadings).
    ax, show, save
        As in scanpy: draw into ``ax``; call ``pyplot.show()``; write the figure to ``save``.

    Returns
    -------
    matplotlib.axes.Axes
        The image is ``ax.images[0]`` (its array: topics x genes).
    """
    outputs = _outputs(data, topic_gene_key=topic_gene_key)
    if outputs.topic_gene is None:
        raise InputError("top_genes needs a topic-gene matrix")
    if n_genes < 1:
        raise InputError(f"n_genes must be at least 1, got {n_genes}")
    beta = outputs.topic_gene
    chosen = _topics(topics, beta.shape[0])
    columns: list[int] = []
    for t in chosen:
        for g in np.argsort(-beta[t], kind="stable")[:n_genes]:
            if g not in columns:
                columns.append(int(g))
    values = beta[np.ix_(chosen, columns)].astype(float)
    if standard_scale:
        scale = np.abs(values).max(axis=1, keepdims=True)
        values = values / np.where(scale == 0, 1.0, scale)
    ax = _axes(ax, (max(4.0, 0.22 * len(columns) + 1.5), max(2.5, 0.3 * len(chosen) + 1.0)))
    signed = bool((values < 0).any())
    limit = float(np.abs(values).max()) or 1.0
    image = ax.imshow(values, aspect="auto", cmap=cmap or ("RdBu_r" if signed else "Reds"),
                      vmin=-limit if signed else None, vmax=limit if signed else None, interpolation="nearest")
    ax.set_xticks(range(len(columns)), [str(outputs.gene_names[g]) for g in columns], rotation=90, fontsize=7)
    ax.set_yticks(range(len(chosen)), [f"topic {t}" for t in chosen], fontsize=8)
    ax.set_title(f"{outputs.name}: top {n_genes} genes per topic")
    ax.figure.colorbar(image, ax=ax, label="weight / row max" if standard_scale else "topic-gene weight",
                       shrink=0.8)
    _finish(ax.figure, show, save)
    return ax


# --------------------------------------------------------------------------- enrichment
_ENRICHMENT = {
    "gsea": {"p": "fdr", "color": "nes", "size": "leading_edge_share"},
    "ora": {"p": "padj", "color": "-log10 padj", "size": "overlap"},
}


def enrichment(
    data: Evaluation | AnnData | pd.DataFrame,
    method: str = "gsea",
    *,
    n_terms: int = 15,
    significant_only: bool = False,
    color: str | None = None,
    size: str | None = None,
    topics: Sequence[int] | None = None,
    cmap: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """Dotplot of the enrichment table: topics (columns) x pathways (rows).

    Pathways are the ``n_terms`` with the smallest adjusted p (ORA) or FDR (GSEA) in any topic;
    every tested (topic, pathway) pair among them is one dot.

    Parameters
    ----------
    data
        An :class:`~topiceval.Evaluation` scored with ``metrics="ora"`` / ``"gsea"``, an AnnData
        holding one (:meth:`~topiceval.Evaluation.to_uns`), or the table itself
        (``evaluation.details["gsea"]``, a ``gsea.csv`` written by ``--details``).
    method
        ``"gsea"`` or ``"ora"``.
    n_terms
        Pathways shown.
    significant_only
        Choose the pathways among the significant pairs only (``significant`` column).
    color
        GSEA: ``"nes"`` (default, diverging colour map centred on 0) or ``"-log10 fdr"``;
        ORA: ``"-log10 padj"`` (default).
    size
        GSEA: ``"leading_edge_share"`` (default: leading-edge genes / set size); ORA: ``"overlap"``
        (default: top genes in the set).
    topics
        Topics shown (default: every topic in the table).
    cmap
        Colour map (default ``"RdBu_r"`` for NES, ``"viridis"`` otherwise).
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib.axes.Axes
        One ``PathCollection`` (``ax.collections[0]``): one point per drawn pair, its array the
        colour values. Pairs at or below the threshold (``significant``) have a black edge.
    """
    method = method.lower()
    if method not in _ENRICHMENT:
        raise InputError(f"method must be 'gsea' or 'ora', got {method!r}")
    if isinstance(data, pd.DataFrame):
        table = data
    else:
        evaluation = _evaluation(data)
        if method not in evaluation.details:
            raise InputError(f"the evaluation has no {method.upper()} table: score it with metrics='{method}'")
        table = evaluation.details[method]
    defaults = _ENRICHMENT[method]
    color = color or defaults["color"]
    size = size or defaults["size"]
    p = defaults["p"]
    if table.empty:
        raise InputError(f"the {method.upper()} table is empty: no (topic, pathway) pair was tested")
    table = table.copy()
    if topics is not None:
        table = table[table["topic"].isin([int(t) for t in topics])]
    table[f"-log10 {p}"] = -np.log10(np.clip(table[p].to_numpy(dtype=float), 1e-300, None))
    if method == "gsea":
        le = table["leading_edge"].fillna("").astype(str)
        table["leading_edge_share"] = [len([g for g in s.split(";") if g]) / n for s, n in zip(le, table["set_size"], strict=True)]
    for name in (color, size):
        if name not in table:
            raise InputError(f"no column {name!r} to draw; columns: {', '.join(map(str, table.columns))}")
    pool = table[table["significant"]] if significant_only else table
    if pool.empty:
        raise InputError(f"no significant {method.upper()} pair to show (significant_only=True)")
    best = pool.groupby("term")[p].min().sort_values(kind="stable")
    terms = list(best.index[:n_terms])
    shown = table[table["term"].isin(terms)]
    topic_ids = sorted(int(t) for t in shown["topic"].unique())
    x = shown["topic"].map({t: i for i, t in enumerate(topic_ids)}).to_numpy()
    y = shown["term"].map({t: i for i, t in enumerate(terms)}).to_numpy()
    sizes = shown[size].to_numpy(dtype=float)
    top = np.nanmax(sizes) if sizes.size and np.nanmax(sizes) > 0 else 1.0
    values = shown[color].to_numpy(dtype=float)
    if color == "nes":
        limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        vmin, vmax, cmap = -limit, limit, cmap or "RdBu_r"
    else:
        vmin, vmax, cmap = float(np.nanmin(values)), float(np.nanmax(values)), cmap or "viridis"
    ax = _axes(ax, (max(4.0, 0.45 * len(topic_ids) + 4.5), max(2.5, 0.28 * len(terms) + 1.2)))
    edges = np.where(shown["significant"].to_numpy(dtype=bool), "black", "none")
    points = ax.scatter(x, y, s=20 + 180 * sizes / top, c=values, cmap=cmap, vmin=vmin, vmax=vmax,
                        edgecolors=edges, linewidths=0.8)
    ax.set_xticks(range(len(topic_ids)), [str(t) for t in topic_ids])
    ax.set_yticks(range(len(terms)), [_short(t) for t in terms], fontsize=7)
    ax.set_xlim(-0.6, len(topic_ids) - 0.4)
    ax.set_ylim(len(terms) - 0.5, -0.5)
    ax.set_xlabel("topic")
    ax.set_title(f"{method.upper()}: colour {color}, size {size.replace('_', ' ')}", fontsize=9)
    ax.grid(alpha=0.2)
    ax.figure.colorbar(points, ax=ax, label=color, shrink=0.8)
    _finish(ax.figure, show, save)
    return ax


def _short(term: str, width: int = 48) -> str:
    return term if len(term) <= width else term[: width - 1] + "…"


# --------------------------------------------------------------------------- GSEA running sum
def gsea_running_sum(
    data: TopicOutputs | AnnData,
    gene_sets: GeneSets | str,
    topic: int,
    term: str,
    *,
    rank_by: str = "topic_gene",
    topic_gene_key: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """The classic GSEA plot of one (topic, pathway): running sum, hit ticks, leading edge.

    The enrichment table keeps ES and the leading edge, not the walk itself, so this function
    draws the walk from the ranking and the set, following the ES definition of pre-ranked GSEA
    with weight 1 (Subramanian et al. 2005, as gseapy.prerank and topiceval's native engine): genes
    sorted by decreasing value (ties by gene index), each set gene adds ``|r_i| / sum |r_hits|``,
    each other gene subtracts ``1 / (N - N_hits)``; the ES is the value of largest magnitude and
    the leading edge the set genes up to that peak (from the trough onwards for a negative ES). It
    is a drawing: the scores come from :func:`topiceval.metrics.topic_gsea`, and the ES drawn equals
    the ``es`` of its table (tested).

    Parameters
    ----------
    data
        :class:`~topiceval.TopicOutputs` or an AnnData holding them.
    gene_sets
        The collection the evaluation used (a :class:`~topiceval.gene_sets.GeneSets` or what
        :func:`topiceval.gene_sets.load` accepts: ``"reactome"``, a GMT path, ...).
    topic, term
        The topic index and the pathway name.
    rank_by
        The ranking the evaluation used (``gsea_rank_by``): ``"topic_gene"`` or ``"log"``.
    topic_gene_key
        ``varm`` key when ``data`` is an AnnData.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib.axes.Axes
        The running-sum curve is ``ax.lines[0]``; the hit ticks are ``ax.collections[0]`` (one
        segment per set gene in the model); the leading edge is the shaded span. ``ax.es`` holds
        the ES drawn and ``ax.leading_edge`` its genes.
    """
    from topiceval.gene_sets import GeneSets, load
    from topiceval.metrics.gsea import gsea_rankings

    outputs = _outputs(data, topic_gene_key=topic_gene_key)
    if outputs.topic_gene is None:
        raise InputError("gsea_running_sum needs a topic-gene matrix")
    collection = gene_sets if isinstance(gene_sets, GeneSets) else load(gene_sets)
    if term not in collection:
        raise InputError(f"no gene set named {term!r} in {collection.source or 'the collection'}")
    (k,) = _topics([topic], outputs.topic_gene.shape[0])
    ranking = gsea_rankings(outputs.topic_gene, rank_by)[k]
    n = ranking.size
    order = np.argsort(-ranking, kind="stable")
    columns = collection.gene_index(outputs.gene_names)
    row = collection.membership[collection.names.get_loc(term)].toarray().ravel()
    in_set = (columns >= 0) & row[np.where(columns >= 0, columns, 0)]
    hits = in_set[order]
    m = int(hits.sum())
    if m == 0 or m == n:
        raise InputError(f"{term!r} has {m} of the model's {n} genes: no walk to draw")
    weights = np.abs(ranking[order]) * hits
    total = weights.sum()
    if total == 0:  # every set gene weighs 0: equal weights (fgsea's convention, as the engine)
        weights, total = hits.astype(float), float(m)
    walk = np.cumsum(weights / total - (~hits) / (n - m))
    peak = int(np.argmax(np.abs(walk)))
    es = float(walk[peak])
    positions = np.flatnonzero(hits)
    if es >= 0:
        edge = positions[positions <= peak]
        span = (0, peak)
    else:
        trough = int(np.argmin(walk))
        edge = positions[positions > trough][::-1]
        span = (trough, n - 1)
    ax = _axes(ax, (6.0, 3.6))
    ax.plot(np.arange(n), walk, color="#2a9d3a", linewidth=1.4)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.axvspan(*span, color="#f4a261", alpha=0.25, linewidth=0)
    low = min(float(walk.min()), 0.0)
    tick = 0.08 * (float(walk.max()) - low or 1.0)
    ax.vlines(positions, low - 1.6 * tick, low - 0.4 * tick, color="black", linewidth=0.6)
    ax.axvline(peak, color="#d62828", linestyle="--", linewidth=0.8)
    ax.set_xlim(0, n - 1)
    ax.set_xlabel(f"gene rank in topic {k} (of {n})")
    ax.set_ylabel("running enrichment score")
    ax.set_title(f"{_short(term, 60)}\ntopic {k}: ES = {es:.3f}, {m} set genes, "
                 f"leading edge {edge.size}", fontsize=9)
    ax.es = es  # type: ignore[attr-defined]
    ax.leading_edge = [str(outputs.gene_names[g]) for g in order[edge]]  # type: ignore[attr-defined]
    _finish(ax.figure, show, save)
    return ax


# --------------------------------------------------------------------------- cell types
def cell_types(
    data: TopicOutputs | AnnData,
    labels: str | Sequence[Any],
    *,
    cell_topic_key: str | None = None,
    cmap: str = "viridis",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """Heatmap of the mean topic proportion of each cell type: topics (rows) x cell types.

    Topics are ordered by their best-matching type (the type with the largest mean proportion),
    in the order of the columns, then by that mean, so matched topics form a diagonal.

    Parameters
    ----------
    data
        :class:`~topiceval.TopicOutputs` with a cell-topic matrix, or an AnnData holding one.
    labels
        One label per cell, or a column of ``obs`` (of the AnnData, or the outputs' ``obs``).
        Missing labels are left out.
    cell_topic_key
        ``obsm`` key when ``data`` is an AnnData.
    cmap
        Colour map.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib.axes.Axes
        The image is ``ax.images[0]``: its array is the topics x types table of means, rows in the
        order of the y tick labels.
    """
    if hasattr(data, "obsm") and hasattr(data, "varm"):
        outputs = _outputs(data, cell_topic_key=cell_topic_key)
        obs = data.obs
    else:
        outputs = _outputs(data)
        obs = outputs.obs
    if outputs.cell_topic is None:
        raise InputError("cell_types needs a cell-topic matrix")
    theta = outputs.cell_topic
    if isinstance(labels, str):
        if obs is None or labels not in obs:
            raise InputError(f"no obs column {labels!r} to read the labels from")
        values = obs[labels]
    else:
        values = pd.Series(list(labels))
    if len(values) != theta.shape[0]:
        raise InputError(f"{len(values)} labels for {theta.shape[0]} cells")
    values = pd.Series(np.asarray(values, dtype=object))
    keep = values.notna().to_numpy()
    frame = pd.DataFrame(theta[keep]).groupby(values[keep].astype(str).to_numpy(), sort=True).mean()
    types = list(frame.index)
    means = frame.to_numpy(dtype=float).T  # topics x types
    best = means.argmax(axis=1)
    order = np.lexsort((-means[np.arange(means.shape[0]), best], best))
    ax = _axes(ax, (max(4.0, 0.4 * len(types) + 2.5), max(2.5, 0.3 * means.shape[0] + 1.2)))
    image = ax.imshow(means[order], aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(len(types)), types, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(order)), [f"topic {t}" for t in order], fontsize=8)
    ax.set_title(f"{outputs.name}: mean topic proportion per cell type", fontsize=9)
    ax.figure.colorbar(image, ax=ax, label="mean cell-topic weight", shrink=0.8)
    _finish(ax.figure, show, save)
    return ax


# --------------------------------------------------------------------------- metric overview
def metrics(
    data: Evaluation | AnnData,
    *,
    fig: Figure | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Every score of one evaluation: bounded scores on one axis, pathway counts on another.

    Scores in [-1, 1] (TC, TD, TQ, IP, ARI, NMI, ``*_U``, ...) are horizontal bars on a shared
    axis; counts (``ORA_N``, ``ORA_Q``, ``GSEA_N``, ``GSEA_Q``) on a second one. A NaN score (e.g.
    ``ORA_U`` with nothing enriched) is marked ``n/a``. Default metrics that were skipped are
    listed under the title.

    Parameters
    ----------
    data
        An :class:`~topiceval.Evaluation` or an AnnData holding one.
    fig
        Draw into this figure (cleared first); default: a new pyplot figure.
    show, save
        As in scanpy.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per group (``fig.axes``; bars are ``ax.patches``, labels the y tick labels).
    """
    evaluation = _evaluation(data)
    scores = evaluation.scores.astype(float)
    bounded = [k for k in scores.index if k in BOUNDED_KEYS or str(k).endswith(BOUNDED_SUFFIXES)]
    counts = [k for k in scores.index if k not in bounded]
    groups = [(keys, title) for keys, title in ((bounded, "score"), (counts, "pathways")) if keys]
    height = 0.35 * max(len(bounded), len(counts), 1) + 1.4
    if fig is None:
        fig = _pyplot().figure(figsize=(4.2 * len(groups), height), layout="constrained")
    else:
        fig.clear()
    for i, (keys, title) in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), i + 1)
        values = scores[keys].to_numpy()
        finite = np.where(np.isfinite(values), values, 0.0)
        ax.barh(range(len(keys)), finite, color=["#4c72b0" if v >= 0 else "#c44e52" for v in finite])
        ax.set_yticks(range(len(keys)), keys)
        ax.invert_yaxis()
        ax.axvline(0, color="grey", linewidth=0.6)
        span = max(1.0, float(np.abs(finite).max())) if title == "pathways" else 1.0
        for y, v in enumerate(values):
            text = "n/a" if not np.isfinite(v) else (f"{v:.3g}" if title == "score" else f"{v:g}")
            ax.text(max(v, 0) if np.isfinite(v) else 0, y, " " + text, va="center", fontsize=8)
        ax.set_xlim(min(0.0, float(finite.min()) * 1.2, -0.05 if title == "score" else 0.0), span * 1.25)
        ax.set_xlabel(title)
    skipped = "; ".join(f"{k}: {v}" for k, v in evaluation.skipped.items())
    name = evaluation.config.get("model", {}).get("name", "model")
    fig.suptitle(f"{name}" + (f"\nskipped: {skipped}" if skipped else ""), fontsize=10)
    _finish(fig, show, save)
    return fig


# --------------------------------------------------------------------------- leaderboard table
def results_table(
    results: Results | pd.DataFrame,
    dataset: str | None = None,
    collection: str | None = None,
    *,
    metrics: Sequence[str] | None = None,
    rank_by: Sequence[str] | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """A leaderboard's results as a table of circles, models ranked (as scib-metrics' table).

    One row per model, best first (the report's ranking: the mean rank over ``rank_by``); one
    column per metric. Each circle's size and colour are the model's mean over seeds scaled
    min-max within the column (the best model of a column has the largest, darkest circle); the
    value is written beside it. A model without a value has no circle and a dash.

    Parameters
    ----------
    results
        :class:`~topiceval.leaderboard.Results` (from :func:`topiceval.leaderboard.run` or
        ``Results.read(folder)``), or an already ranked table
        (:func:`topiceval.leaderboard.report.ranked_table`: index model, a ``rank`` column and one
        column per metric).
    dataset, collection
        Which results (default: the first dataset and collection that have scores).
    metrics
        Columns (default: the registry's main keys, :func:`topiceval.metrics.registry.main_keys`).
    rank_by
        Metrics of the ranking (default: the run's ``rank_by``).
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib.axes.Axes
        Circles are ``ax.collections[0]`` (one per model and metric with a value, its array the
        scaled values in [0, 1]); model names are the y tick labels, best first.
    """
    from topiceval.metrics.registry import main_keys

    metrics = list(metrics or main_keys())
    if isinstance(results, pd.DataFrame):
        table = results
        where = ""
    else:
        from topiceval.leaderboard.report import ranked_table

        scores = results.scores
        if scores.empty:
            raise InputError("the leaderboard has no scores")
        dataset = dataset or str(scores["dataset"].iloc[0])
        collection = collection or str(scores[scores["dataset"] == dataset]["collection"].iloc[0])
        table = ranked_table(results, dataset, collection, rank_by=rank_by)
        if table.empty:
            raise InputError(f"no results for dataset {dataset!r} and collection {collection!r}")
        where = f"{dataset} ({collection} gene sets)"
    columns = [m for m in metrics if m in table.columns]
    if not columns:
        raise InputError(f"none of the metrics {metrics} is in the results")
    table = table.sort_values("rank", kind="stable") if "rank" in table else table
    models = [str(m) for m in table.index]
    ax = _axes(ax, (1.0 * len(columns) + 3.0, 0.42 * len(models) + 1.4))
    xs, ys, scaled, labels = [], [], [], []
    for j, metric in enumerate(columns):
        values = table[metric].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
        for i, v in enumerate(values):
            if np.isfinite(v):
                xs.append(j)
                ys.append(i)
                scaled.append(0.5 if high == low else (v - low) / (high - low))
                labels.append((j, i, f"{v:.3g}"))
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=8, color="grey")
    scaled_array = np.asarray(scaled, dtype=float)
    ax.scatter(xs, ys, s=60 + 340 * scaled_array, c=scaled_array, cmap="YlGnBu", vmin=0, vmax=1,
               edgecolors="grey", linewidths=0.5)
    for j, i, text in labels:
        ax.text(j + 0.3, i, text, va="center", fontsize=7)
    rank_labels = [f"{m}  ({table['rank'].iloc[i]:.2g})" if "rank" in table and np.isfinite(table["rank"].iloc[i])
                   else m for i, m in enumerate(models)]
    ax.set_yticks(range(len(models)), rank_labels, fontsize=8)
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_xlim(-0.5, len(columns) - 0.1)
    ax.set_ylim(len(models) - 0.5, -0.5)
    for side in ("right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    title = "models ranked best first (mean rank); circle: min-max within column"
    ax.set_title(f"{where}\n{title}" if where else title, fontsize=9)
    _finish(ax.figure, show, save)
    return ax


# --------------------------------------------------------------------------- statistics
def _cd_cliques(mean_ranks: pd.Series, cd: float) -> list[tuple[int, int]]:
    """Maximal runs of models (in rank order) whose mean ranks differ by at most ``cd``."""
    values = mean_ranks.to_numpy()
    spans: list[tuple[int, int]] = []
    for i in range(len(values)):
        j = i
        while j + 1 < len(values) and values[j + 1] - values[i] <= cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in spans):
            spans.append((i, j))
    return spans


def _cd_bottom(result: Any) -> float:
    """Lowest y of :func:`critical_difference`'s layout (for sizing a figure to it)."""
    k = len(result.mean_ranks)
    cliques = _cd_cliques(result.mean_ranks, float(result.critical_difference))
    return -0.45 - 0.25 * len(cliques) - 0.7 * ((k + 1) // 2 - 1) - 0.6


def critical_difference(
    result: Any,
    *,
    title: str = "",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """Demšar's critical-difference diagram of a Friedman test (Nemenyi post hoc).

    Mean ranks on an axis (1 = best, left), the critical difference as a bar, and thick lines
    joining models whose mean ranks differ by at most the CD (not significantly different).

    Parameters
    ----------
    result
        A :class:`topiceval.stats.FriedmanResult` (``mean_ranks`` best first,
        ``critical_difference``), e.g. from ``topiceval.leaderboard.statistics.friedman_overall``.
    title
        Axes title.
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib.axes.Axes
        One text label per model (``"model (mean rank)"``) and one red line per group of models
        not significantly different (``ax.collections``, label ``"clique"``).
    """
    ranks = result.mean_ranks
    k = len(ranks)
    cd = float(result.critical_difference)
    cliques = _cd_cliques(ranks, cd)
    half = (k + 1) // 2
    top = -0.45 - 0.25 * len(cliques)  # labels start below the clique bars
    bottom = _cd_bottom(result)
    ax = _axes(ax, (7.0, 0.9 + 0.32 * (2.2 - bottom)))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(bottom, 2.2)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", linewidth=1)
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.15, color="black", linewidth=1)
        ax.text(tick, 0.3, str(tick), ha="center", va="bottom", fontsize=8)
    ax.hlines(1.3, 1, 1 + cd, color="black", linewidth=1.5)
    ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, (model, rank) in enumerate(ranks.items()):
        left = i < half
        level = top - 0.7 * (i if left else k - 1 - i)
        x_text = 0.6 if left else k + 0.4
        ax.plot([rank, rank, x_text], [0, level, level], color="black", linewidth=0.8)
        ax.text(x_text, level + 0.06, f"{model} ({rank:.2f})", ha="left" if left else "right", va="bottom",
                fontsize=8)
    for n, (a, b) in enumerate(cliques):
        y = -0.3 - 0.25 * n
        ax.hlines(y, ranks.iloc[a] - 0.03, ranks.iloc[b] + 0.03, color="tab:red", linewidth=3, label="clique")
    ax.set_title(title, fontsize=9)
    _finish(ax.figure, show, save)
    return ax


def stability(
    data: Results | pd.DataFrame,
    *,
    dataset: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes:
    """Topic stability of every pair of seeds, one column of points per model.

    Each point is one pair of seeds (the mean matched cosine of their topics,
    :func:`topiceval.metrics.topic_stability`); a black bar marks each model's mean. Models are
    ordered by that mean, most stable first.

    Parameters
    ----------
    data
        Leaderboard :class:`~topiceval.leaderboard.Results` (its ``stability`` table) or a table
        with the columns of ``stability.csv``: ``dataset, model, seed_a, seed_b, stability``.
    dataset
        Draw one dataset only (default: every dataset, one marker shape each).
    ax, show, save
        As in scanpy.

    Returns
    -------
    matplotlib.axes.Axes
        One point per seed pair (``ax.collections``, label = dataset) and one mean bar per model
        (``ax.lines``, label ``"mean"``); x tick labels are the models.
    """
    table = data if isinstance(data, pd.DataFrame) else getattr(data, "stability", None)
    needed = {"dataset", "model", "stability"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise InputError(f"stability: needs a table with columns {', '.join(sorted(needed))} (stability.csv)")
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    table = table.dropna(subset=["stability"])
    if table.empty:
        raise InputError("stability: no seed pairs to draw (the leaderboard needs at least two seeds per model"
                         + (f" on {dataset!r})" if dataset is not None else ")"))
    means = table.groupby("model", sort=False)["stability"].mean().sort_values(ascending=False)
    models = list(means.index)
    ax = _axes(ax, (1.2 + 0.8 * len(models), 3.2))
    markers = "osD^vP*X"
    datasets = list(dict.fromkeys(table["dataset"]))
    for i, name in enumerate(datasets):
        part = table[table["dataset"] == name]
        x = part["model"].map({m: j for j, m in enumerate(models)}).to_numpy(dtype=float)
        offset = (i - (len(datasets) - 1) / 2) * 0.12
        ax.scatter(x + offset, part["stability"], marker=markers[i % len(markers)], s=22, alpha=0.8, label=name)
    for j, model in enumerate(models):
        ax.plot([j - 0.3, j + 0.3], [means[model]] * 2, color="black", linewidth=2,
                label="mean" if j == 0 else "_nolegend_")
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylabel("topic stability (mean matched cosine)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, title="dataset (marker)", title_fontsize=7)
    _finish(ax.figure, show, save)
    return ax
