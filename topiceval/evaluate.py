"""``evaluate()``: score a model or its outputs with any set of metrics, in one call.

This module only routes: it validates the request, calls the metric functions of
:mod:`topiceval.metrics` and collects their results into an :class:`Evaluation`. It adds no
arithmetic of its own (TQ is computed by :func:`~topiceval.metrics.topic_quality`).

Metrics are registered in :data:`METRICS` by name (``tc``, ``td``, ``tq``, ``ip``, ``ora``,
``gsea``, ``clustering``, which ``ari`` and ``nmi`` also request); each entry
states the inputs it needs and the score keys it produces, so new metric families plug in by
registering one more :class:`MetricSpec`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from topiceval._utils import PathLike, preview
from topiceval.errors import InputError
from topiceval.gene_sets import GeneSets, load
from topiceval.io import _json_safe, atomic_write, write_json
from topiceval.metrics import (
    BH_SCOPES,
    GSEA_ENGINES,
    ORA_BACKGROUNDS,
    RANK_BY,
    PAPER_RESOLUTIONS,
    TD_METHODS,
    ZERO_COOCCURRENCE_RULES,
    MetricResult,
    check_clustering_options,
    clustering_scores,
    interpretation_purity,
    top_gene_indices,
    topic_coherence,
    topic_diversity,
    topic_gsea,
    topic_ora,
    topic_quality,
)
from topiceval.protocol import TopicModel, TopicOutputs, as_outputs, check_labels, check_top_n

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "Evaluation",
    "EvaluationOptions",
    "MetricSpec",
    "METRICS",
    "METRIC_ALIASES",
    "DEFAULT_METRICS",
    "evaluate",
]


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class EvaluationOptions:
    """Every option that changes a number; all are recorded in :attr:`Evaluation.config`.

    Attributes
    ----------
    top_n
        Top genes per topic for TC, TD and the per-topic table (paper: 10).
    tc_zero_cooccurrence
        TC score of a never-co-occurring pair: 0 (reference) or -1 (NPMI limit).
    td_method
        ``"unique"`` (paper Eq. 3) or ``"exclusive"`` (reference code, published numbers).
    seed
        Seed of every stochastic step (permutations, clustering); the same seed gives the same
        numbers.
    ora_background
        ORA universe: ``"gene_sets"`` (reference, gseapy.enrich) or ``"vocabulary"``.
    ora_bh_scope
        ORA Benjamini-Hochberg per topic over ``"hit_sets"`` (reference) or ``"all_sets"``.
    ora_alpha
        Adjusted p-value at or below which an ORA pair is enriched (paper: 0.01).
    ora_min_size, ora_max_size
        Sizes (inside the ORA background) of the sets tested; ``None`` leaves a bound open.
    gsea_engine
        ``"native"``, ``"gseapy"`` (reference) or ``"blitzgsea"``.
    gsea_n_perm
        Permutations of the GSEA null (gseapy: 1000).
    gsea_fdr
        FDR at or below which a GSEA pair is enriched (paper: 0.01).
    gsea_rank_by
        ``"topic_gene"`` (reference) or ``"log"`` (centred log of the topic-gene values).
    gsea_min_size, gsea_max_size
        Sizes (genes in the model) of the sets GSEA tests (gseapy: 15 and 500).
    gsea_device
        Where the native GSEA engine computes its null: ``"cpu"`` (default), ``"cuda"`` or
        ``"auto"`` (see :func:`~topiceval.metrics.prerank_gsea`); recorded under
        ``config["runtime"]`` with ``n_jobs``.
    n_jobs
        Threads for GSEA. It changes no number, so it is recorded under ``config["runtime"]``
        and left out of ``config_sha256``.
    cluster_method
        Community detection for ARI / NMI: ``"louvain"`` (paper) or ``"leiden"``.
    cluster_resolutions
        Resolutions swept for ARI / NMI (paper: 0.0, 0.1, ..., 1.9).
    cluster_n_neighbors
        kNN graph size for clustering, the cell itself included (scanpy's default 15).
    cluster_knn
        kNN search: ``"auto"`` (exact up to 100,000 cells, then pynndescent if installed),
        ``"exact"`` or ``"pynndescent"``.
    cluster_weighted
        Community detection on connectivity-weighted edges (``True``) or unweighted ones
        (``False``); ``None`` follows scanpy's defaults, which the authors used (Louvain
        unweighted, Leiden weighted).
    """

    top_n: int = 10
    tc_zero_cooccurrence: float = 0.0
    td_method: str = "unique"
    seed: int = 0
    ora_background: str = "gene_sets"
    ora_bh_scope: str = "hit_sets"
    ora_alpha: float = 0.01
    ora_min_size: int | None = None
    ora_max_size: int | None = None
    gsea_engine: str = "native"
    gsea_n_perm: int = 1000
    gsea_fdr: float = 0.01
    gsea_rank_by: str = "topic_gene"
    gsea_min_size: int = 15
    gsea_max_size: int = 500
    gsea_device: str = "cpu"
    n_jobs: int = 1
    cluster_method: str = "louvain"
    cluster_resolutions: tuple[float, ...] = PAPER_RESOLUTIONS
    cluster_n_neighbors: int = 15
    cluster_knn: str = "auto"
    cluster_weighted: bool | None = None

    def __post_init__(self) -> None:
        if self.tc_zero_cooccurrence not in ZERO_COOCCURRENCE_RULES:
            raise InputError(
                f"tc_zero_cooccurrence must be 0 or -1, got {self.tc_zero_cooccurrence!r}"
            )
        if self.td_method not in TD_METHODS:
            raise InputError(f"td_method must be one of {', '.join(TD_METHODS)}, got {self.td_method!r}")
        for name in ("top_n", "seed", "gsea_n_perm", "gsea_min_size", "gsea_max_size", "n_jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InputError(f"{name} must be an integer, got {value!r}")
        for name in ("ora_min_size", "ora_max_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)):
                raise InputError(f"{name} must be an integer or None, got {value!r}")
        for name, value, valid in (
            ("ora_background", self.ora_background, ORA_BACKGROUNDS),
            ("ora_bh_scope", self.ora_bh_scope, BH_SCOPES),
            ("gsea_engine", self.gsea_engine, GSEA_ENGINES),
            ("gsea_rank_by", self.gsea_rank_by, RANK_BY),
        ):
            if value not in valid:
                raise InputError(f"{name} must be one of {', '.join(valid)}, got {value!r}")
        for name, low in (("gsea_n_perm", 1), ("gsea_min_size", 1), ("gsea_max_size", 1),
                          ("ora_min_size", 1), ("ora_max_size", 1)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise InputError(f"{name} must be at least {low}, got {value!r}")
        if self.gsea_min_size > self.gsea_max_size:
            raise InputError(f"gsea_min_size ({self.gsea_min_size}) is larger than gsea_max_size ({self.gsea_max_size})")
        if self.ora_min_size is not None and self.ora_max_size is not None and self.ora_min_size > self.ora_max_size:
            raise InputError(f"ora_min_size ({self.ora_min_size}) is larger than ora_max_size ({self.ora_max_size})")
        if self.n_jobs == 0:
            raise InputError("n_jobs must be a non-zero integer (-1: all cores)")
        for name in ("ora_alpha", "gsea_fdr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not 0 < value <= 1:
                raise InputError(f"{name} must be a number in (0, 1], got {value!r}")
        resolutions = check_clustering_options(
            self.cluster_resolutions, self.cluster_n_neighbors, self.cluster_method, self.cluster_knn
        )
        object.__setattr__(self, "cluster_resolutions", resolutions)
        if self.cluster_weighted not in (None, True, False):
            raise InputError(f"cluster_weighted must be True, False or None, got {self.cluster_weighted!r}")

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> EvaluationOptions:
        """Build from keyword options; unknown names fail with the list of valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**options)


# --------------------------------------------------------------------------- registry
@dataclass
class _Context:
    outputs: TopicOutputs
    gene_sets: GeneSets | None
    labels: np.ndarray | None
    options: EvaluationOptions
    results: dict[str, MetricResult] = field(default_factory=dict)
    #: Long tables a metric family wants to expose (``Evaluation.details``), by name.
    details: dict[str, pd.DataFrame] = field(default_factory=dict)
    _top: np.ndarray | None = None

    @property
    def top_genes(self) -> np.ndarray:
        if self._top is None:
            self._top = top_gene_indices(self.outputs.topic_gene, self.options.top_n)
        return self._top


@dataclass(frozen=True)
class MetricSpec:
    """A metric family that :func:`evaluate` can run.

    Attributes
    ----------
    name
        Name users request (``"tc"``).
    keys
        Score keys it produces (``("TC",)``), in order.
    needs
        Inputs it needs, among ``"gene_sets"``, ``"labels"``, ``"cell_topic"``, ``"cells"`` (a
        cell-topic matrix or a cell embedding).
    after
        Metrics whose results it uses; they run first.
    compute
        ``compute(context) -> list[MetricResult]``; it may also put long tables into
        ``context.details``.
    """

    name: str
    keys: tuple[str, ...]
    needs: tuple[str, ...]
    compute: Callable[[_Context], list[MetricResult]]
    after: tuple[str, ...] = ()


def _tc(ctx: _Context) -> list[MetricResult]:
    o = ctx.outputs
    return [topic_coherence(o.topic_gene, o.gene_names, ctx.gene_sets, ctx.options.top_n,
                            ctx.options.tc_zero_cooccurrence, top_genes=ctx.top_genes)]


def _td(ctx: _Context) -> list[MetricResult]:
    return [topic_diversity(ctx.outputs.topic_gene, ctx.options.top_n, ctx.options.td_method,
                            top_genes=ctx.top_genes)]


def _tq(ctx: _Context) -> list[MetricResult]:
    return [topic_quality(ctx.results["TC"], ctx.results["TD"])]


def _ip(ctx: _Context) -> list[MetricResult]:
    return [interpretation_purity(ctx.outputs.cell_topic, ctx.labels)]


def _ora(ctx: _Context) -> list[MetricResult]:
    o, opts = ctx.outputs, ctx.options
    result = topic_ora(o.topic_gene, o.gene_names, ctx.gene_sets, opts.top_n,
                       background=opts.ora_background, bh_scope=opts.ora_bh_scope,
                       alpha=opts.ora_alpha, min_size=opts.ora_min_size,
                       max_size=opts.ora_max_size, top_genes=ctx.top_genes)
    ctx.details["ora"] = result.table
    return result.scores


def _gsea(ctx: _Context) -> list[MetricResult]:
    o, opts = ctx.outputs, ctx.options
    result = topic_gsea(o.topic_gene, o.gene_names, ctx.gene_sets, engine=opts.gsea_engine,
                        n_perm=opts.gsea_n_perm, rank_by=opts.gsea_rank_by,
                        min_size=opts.gsea_min_size, max_size=opts.gsea_max_size,
                        fdr=opts.gsea_fdr, seed=opts.seed, n_jobs=opts.n_jobs,
                        device=opts.gsea_device)
    ctx.details["gsea"] = result.table
    return result.scores
def _clustering(ctx: _Context) -> list[MetricResult]:
    o, opts = ctx.outputs, ctx.options
    # The authors cluster the encoder mean, not the proportions: the embedding wins when given.
    source = "cell_embedding" if o.cell_embedding is not None else "cell_topic"
    result = clustering_scores(
        getattr(o, source),
        ctx.labels,
        opts.cluster_resolutions,
        opts.cluster_n_neighbors,
        opts.seed,
        opts.cluster_method,
        knn_method=opts.cluster_knn,
        weighted=opts.cluster_weighted,
    )
    ctx.details["clustering"] = result.sweep
    return [dataclasses.replace(r, info={"representation": source, **r.info}) for r in result.results.values()]


#: Registered metric families, by request name.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("tc", ("TC",), ("gene_sets",), _tc),
        MetricSpec("td", ("TD",), (), _td),
        MetricSpec("tq", ("TQ",), ("gene_sets",), _tq, after=("tc", "td")),
        MetricSpec("ip", ("IP",), ("labels", "cell_topic"), _ip),
        MetricSpec("ora", ("ORA_N", "ORA_U", "ORA_Q"), ("gene_sets",), _ora),
        MetricSpec("gsea", ("GSEA_N", "GSEA_U", "GSEA_Q"), ("gene_sets",), _gsea),
        MetricSpec(
            "clustering",
            ("ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"),
            ("labels", "cells"),
            _clustering,
        ),
    )
}

#: Other names that request a registered family (``ari`` and ``nmi`` both run ``clustering``).
METRIC_ALIASES: dict[str, str] = {"ari": "clustering", "nmi": "clustering"}

#: What ``metrics=None`` asks for (each only where its inputs are given). ORA, GSEA and clustering
#: are asked for by name (``metrics="ora,gsea,ari"``): they cost seconds to minutes and need extras.
DEFAULT_METRICS: tuple[str, ...] = ("tc", "td", "tq", "ip")


def resolve_metrics(metrics: str | Iterable[str] | None, available: set[str]) -> list[str]:
    """Validate a metric request; returns the metric names in run order.

    ``None`` means :data:`DEFAULT_METRICS` restricted to those whose inputs are ``available``;
    ``"all"`` means every registered metric. A string may list names separated by commas.
    Unknown names fail with the list of valid ones.
    """
    if metrics is None:
        requested = [m for m in DEFAULT_METRICS if set(METRICS[m].needs) <= available]
    else:
        if isinstance(metrics, str):
            metrics = [m for m in metrics.split(",")]
        requested = [str(m).strip().lower() for m in metrics]
        if requested == ["all"]:
            requested = list(METRICS)
        requested = [METRIC_ALIASES.get(m, m) for m in requested]
        unknown = [m for m in requested if m not in METRICS]
        if unknown or not requested:
            raise InputError(
                f"unknown metric(s) {preview(repr(m) for m in unknown) or '(none given)'}; "
                f"valid: {', '.join([*METRICS, *METRIC_ALIASES])}"
            )
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in METRICS[name].after:
            visit(dep)
        if name not in order:
            order.append(name)

    for name in dict.fromkeys(requested):
        visit(name)
    return order


# --------------------------------------------------------------------------- result
@dataclass
class Evaluation:
    """The result of :func:`evaluate`.

    Attributes
    ----------
    scores
        One value per score key (``TC``, ``TD``, ...), in request order.
    per_topic
        One row per topic: ``top_genes`` and each metric's per-topic values (``TC`` mean NPMI,
        ``TD_exclusive_share`` fraction of top genes in no other topic, ``IP_*`` cell counts and
        purity).
    config
        Options, metrics, model shape, gene-set source and sha256, coverage, package versions,
        and ``config_sha256``: a hash of everything that changes the numbers.
    info
        Per-metric facts (missing genes, pair counts, ...).
    details
        Long tables of metrics that have them, by name: ``"ora"`` (one row per (topic, set) pair
        sharing a gene, :data:`~topiceval.metrics.ORA_COLUMNS`) and ``"gsea"`` (one row per tested
        pair, :data:`~topiceval.metrics.GSEA_COLUMNS`).
    warnings
        Warnings raised while scoring, as text.
    """

    scores: pd.Series
    per_topic: pd.DataFrame
    config: dict[str, Any]
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> float:
        return float(self.scores[key])

    def __repr__(self) -> str:
        scores = ", ".join(f"{k}={v:.4g}" for k, v in self.scores.items())
        return f"Evaluation({self.config['model']['name']}: {scores})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: score keys at the top level, plus ``config`` and ``per_topic``."""
        out: dict[str, Any] = {key: float(value) for key, value in self.scores.items()}
        records = self.per_topic.reset_index().to_dict(orient="records")
        out["config"] = dict(self.config, info=self.info, warnings=self.warnings)
        out["per_topic"] = records
        return _json_safe(out)

    def to_json(self, path: PathLike) -> None:
        """Write :meth:`to_dict` as JSON, atomically (NaN becomes ``null``)."""
        write_json(self.to_dict(), path)

    def to_long(self) -> pd.DataFrame:
        """Tidy long table: ``model, metric, topic, value`` (``topic`` is -1 for aggregates)."""
        model = self.config["model"]["name"]
        rows = [(model, key, -1, float(value)) for key, value in self.scores.items()]
        numeric = self.per_topic.select_dtypes("number")
        for column in numeric.columns:
            rows.extend((model, column, int(t), float(v)) for t, v in numeric[column].items())
        return pd.DataFrame(rows, columns=["model", "metric", "topic", "value"])

    def write_details(self, folder: PathLike) -> list[Path]:
        """Write each detail table as ``folder/<name>.csv`` (``ora.csv``, ``gsea.csv``), atomically.

        Returns the paths written (none when no metric produced a table).
        """
        from topiceval._utils import as_path

        target = as_path(folder)
        if target.exists() and not target.is_dir():
            raise InputError(f"details folder {target} is a file")
        written = []
        for name, table in self.details.items():
            path = target / f"{name}.csv"
            with atomic_write(path) as handle:
                table.to_csv(handle, index=False)
            written.append(path)
        return written

    def to_uns(self, adata: AnnData, key: str = "topiceval") -> None:
        """Store scores, config and the per-topic table in ``adata.uns[key]``."""
        adata.uns[key] = {
            "scores": {k: float(v) for k, v in self.scores.items()},
            "config_json": json.dumps(_json_safe(self.config)),
            "per_topic": self.per_topic.assign(
                top_genes=self.per_topic["top_genes"].map(",".join)
            ).reset_index(),
        }


# --------------------------------------------------------------------------- evaluate
def evaluate(
    model_or_outputs: TopicModel | TopicOutputs,
    gene_sets: GeneSets | Mapping[str, Iterable[str]] | PathLike | None = None,
    labels: Sequence[Any] | np.ndarray | pd.Series | str | None = None,
    metrics: str | Iterable[str] | None = None,
    *,
    adata: AnnData | None = None,
    name: str | None = None,
    **options: Any,
) -> Evaluation:
    """Score a topic model (or its outputs) on the requested metrics.

    Parameters
    ----------
    model_or_outputs
        A :class:`~topiceval.protocol.TopicModel` (then ``adata`` supplies the cells) or
        :class:`~topiceval.protocol.TopicOutputs`.
    gene_sets
        Collection for TC (and enrichment): :class:`~topiceval.gene_sets.GeneSets`, a GMT path, a
        shipped collection name or ``{name: genes}``.
    labels
        Cell-type labels (one per cell), or the name of an ``adata.obs`` column.
    metrics
        Names (``"tc,td,tq,ip"`` or a list), ``"all"``, or ``None`` for TC, TD, TQ and IP where
        their inputs are given. ``"clustering"`` (or ``"ari"`` / ``"nmi"``) adds ARI, NMI,
        ARI_label_free, NMI_label_free and ASW; it is never a default (it needs python-igraph
        and its numbers depend on the sweep options).
    adata
        Cells for a model's ``cell_topic(adata)``, and the source of ``labels`` given by name.
    name
        Model name for reports (default: the model's).
    **options
        :class:`EvaluationOptions` fields: ``top_n``, ``tc_zero_cooccurrence``, ``td_method``,
        ``seed``, ``ora_*``, ``gsea_*``, ``n_jobs``, ``cluster_method``, ``cluster_resolutions``,
        ``cluster_n_neighbors``, ``cluster_knn``, ``cluster_weighted``.

    Returns
    -------
    Evaluation

    Raises
    ------
    InputError
        Unknown metric or option, a metric whose input is missing, shapes that disagree, NaN,
        gene sets sharing no gene with the model.
    """
    opts = EvaluationOptions.from_kwargs(options)
    outputs = as_outputs(model_or_outputs, adata)
    if name is not None:
        outputs = dataclasses.replace(outputs, name=name)

    if isinstance(labels, str):
        if adata is None:
            raise InputError(f"labels={labels!r} names an obs column, but no adata was given")
        if labels not in adata.obs:
            raise InputError(f"no obs column {labels!r}; obs columns: {preview(adata.obs.columns, 30)}")
        labels = adata.obs[labels]

    available = {"gene_sets"} if gene_sets is not None else set()
    if outputs.cell_topic is not None:
        available.add("cell_topic")
    if outputs.n_cells is not None:
        available.add("cells")
    if labels is not None:
        available.add("labels")
    order = resolve_metrics(metrics, available)
    check_top_n(opts.top_n, outputs.n_genes)
    for metric in order:
        missing = [need for need in METRICS[metric].needs if need not in available]
        if missing:
            raise InputError(f"metric {metric!r} needs {' and '.join(_NEED_TEXT[m] for m in missing)}")

    needed = {need for metric in order for need in METRICS[metric].needs}
    collection = load(gene_sets) if "gene_sets" in needed else None
    label_values = None
    if "labels" in needed:
        label_values = check_labels(labels, outputs.n_cells)  # type: ignore[arg-type]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coverage = collection.coverage(outputs.gene_names) if collection is not None else None
        ctx = _Context(outputs, collection, label_values, opts)
        for metric in order:
            for result in METRICS[metric].compute(ctx):
                ctx.results[result.name] = result
    messages = []
    for w in caught:
        messages.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    requested = [key for metric in order for key in METRICS[metric].keys]
    scores = pd.Series({key: ctx.results[key].score for key in requested}, dtype=float, name=outputs.name)
    per_topic = _per_topic_table(outputs, ctx)
    config = _config(outputs, order, opts, collection, coverage, label_values)
    info = {key: ctx.results[key].info for key in requested}
    return Evaluation(scores, per_topic, config, info, ctx.details, messages)


_GENE_SET_HASH_KEYS = ("content_sha256", "case", "filters", "species_match")

_NEED_TEXT = {
    "gene_sets": "gene sets (gene_sets=...)",
    "labels": "cell labels (labels=...)",
    "cell_topic": "a cell-topic matrix",
    "cells": "a cell-topic matrix or a cell embedding",
}


def _per_topic_table(outputs: TopicOutputs, ctx: _Context) -> pd.DataFrame:
    table = pd.DataFrame(index=pd.RangeIndex(outputs.n_topics, name="topic"))
    table["top_genes"] = [list(outputs.gene_names[row]) for row in ctx.top_genes]
    for key, result in ctx.results.items():
        if isinstance(result.per_topic, pd.DataFrame):
            for column in result.per_topic.columns:
                table[f"{key}_{column}"] = result.per_topic[column].to_numpy()
        elif result.per_topic is not None:
            table[key] = result.per_topic
    return table


#: Options that change no number: recorded under ``config["runtime"]``, not hashed
#: (``gsea_device``: the hardware of the same computation; a GPU rounds the null ES in float32
#: in another order, nothing else).
_RUNTIME_OPTIONS = ("n_jobs", "gsea_device")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("topiceval", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "anndata"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            out[package] = "unknown"
    for package in ("gseapy", "blitzgsea"):  # optional GSEA engines, listed when installed
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def _config(
    outputs: TopicOutputs,
    order: list[str],
    opts: EvaluationOptions,
    collection: GeneSets | None,
    coverage: Any,
    labels: np.ndarray | None,
) -> dict[str, Any]:
    options = dataclasses.asdict(opts)
    runtime = {name: options.pop(name) for name in _RUNTIME_OPTIONS}
    numbers = {"metrics": order, "options": options, "gene_sets": None}
    gene_set_config = None
    if collection is not None:
        gene_set_config = collection.config()
        # Only what changes numbers enters the hash: the same sets fetched from a mirror, read
        # from a plain or gzip file, or given as a dict, hash the same.
        numbers["gene_sets"] = {key: gene_set_config.get(key) for key in _GENE_SET_HASH_KEYS}
    config_hash = hashlib.sha256(json.dumps(_json_safe(numbers), sort_keys=True).encode()).hexdigest()
    return {
        **numbers,
        "gene_sets": gene_set_config,
        "config_sha256": config_hash,
        "model": {
            "name": outputs.name,
            "n_topics": outputs.n_topics,
            "n_genes": outputs.n_genes,
            "n_cells": outputs.n_cells,
        },
        "coverage": None if coverage is None else coverage.as_dict(),
        "labels": None if labels is None else {
            "n_cells": int(labels.size),
            "n_types": int(len({v for v in labels if v is not None})),
        },
        "runtime": runtime,
        "versions": _versions(),
    }
