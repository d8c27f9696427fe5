"""``evaluate()``: score a model, its outputs or an AnnData with any set of metrics, in one call.

This module only routes: it validates the request, calls each metric family's ``compute`` (see
:mod:`topiceval.metrics.registry`, the one list of families, their options, inputs and score keys)
and collects the results into an :class:`Evaluation`. It adds no arithmetic of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from topiceval._utils import PathLike, preview
from topiceval.errors import InputError
from topiceval.gene_sets import GeneSets, load
from topiceval.io import _json_safe, atomic_write, write_json
from topiceval.metrics import MetricResult
from topiceval.metrics._family import NEEDS, ScoringInput
from topiceval.metrics.registry import (
    DEFAULT_METRICS,
    FAMILIES,
    METRIC_ALIASES,
    METRICS,
    option_specs_all,
    resolve_metrics,
)
from topiceval.protocol import TopicModel, TopicOutputs, as_outputs, check_labels, check_top_n

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "Evaluation",
    "EvaluationOptions",
    "METRICS",
    "METRIC_ALIASES",
    "DEFAULT_METRICS",
    "evaluate",
    "get_table",
    "resolve_metrics",
]


# --------------------------------------------------------------------------- options
def _options_doc() -> str:
    lines = ["Every option of every metric family, flat; all are recorded in :attr:`Evaluation.config`.",
             "",
             "Composed from the families' options dataclasses (:mod:`topiceval.metrics.registry`): each",
             "field is declared, documented and validated once, in its family's module.",
             "",
             "Attributes",
             "----------"]
    for spec in option_specs_all():
        lines += [spec.name, f"    {spec.doc[0].upper()}{spec.doc[1:]} (default {spec.default!r}; "
                  f"{spec.owner.__name__})."]
    return "\n".join(lines)


def _post_init(self: Any) -> None:
    values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    for family in FAMILIES:
        if family.options is None:
            continue
        checked = family.options.take(values)
        for f in dataclasses.fields(checked):  # normalised values (resolutions as a tuple of floats)
            values[f.name] = getattr(checked, f.name)
    for name, value in values.items():
        object.__setattr__(self, name, value)


@classmethod  # type: ignore[misc]
def _from_kwargs(cls: type, options: Mapping[str, Any]) -> Any:
    """Build from keyword options; unknown names fail with the list of valid ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return cls(**options)


def _for_family(self: Any, name: str) -> Any:
    """The options dataclass of family ``name`` (``None`` for a family without options)."""
    family = METRICS[METRIC_ALIASES.get(name, name)]
    if family.options is None:
        return None
    return family.options.take(dataclasses.asdict(self))


def _hashed(self: Any) -> dict[str, Any]:
    """The options that change numbers (what ``config_sha256`` hashes), by name."""
    out = {}
    for spec in option_specs_all():
        value = getattr(self, spec.name)
        if spec.runtime or (not spec.hashed_at_default and value == spec.default):
            continue
        out[spec.name] = value
    return out


def _runtime(self: Any) -> dict[str, Any]:
    """The options that change no number (recorded under ``config["runtime"]``)."""
    return {spec.name: getattr(self, spec.name) for spec in option_specs_all() if spec.runtime}


#: Every option as one frozen dataclass: built from the registry's families, so each option is
#: declared once (in its family's module). ``EvaluationOptions(ora_alpha=0.05)``,
#: ``.from_kwargs({...})``, ``.for_family("ora")`` (the family's own options), ``dataclasses.asdict``.
EvaluationOptions = dataclasses.make_dataclass(
    "EvaluationOptions",
    [(spec.name, Any, field(default=spec.default)) for spec in option_specs_all()],
    frozen=True,
    namespace={"__post_init__": _post_init, "from_kwargs": _from_kwargs, "for_family": _for_family,
               "hashed": _hashed, "runtime": _runtime},
)
EvaluationOptions.__module__ = __name__
EvaluationOptions.__doc__ = _options_doc()


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
        sharing a gene, :data:`~topiceval.metrics.ORA_COLUMNS`), ``"gsea"`` (one row per tested
        pair, :data:`~topiceval.metrics.GSEA_COLUMNS`), ``"clustering"`` (the resolution sweep),
        ``"celltype"`` (per cell type: best topic, its AUROC, rare or not) and, with ``n_boot``,
        ``"bootstrap"`` (one interval per score that has one).
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
        skipped = "; ".join(f"{name} skipped: {why}" for name, why in self.skipped.items())
        return f"Evaluation({self.config['model']['name']}: {scores}{'; ' + skipped if skipped else ''})"

    @property
    def skipped(self) -> dict[str, str]:
        """Default metrics that did not run, with the missing input (``config["skipped"]``)."""
        return dict(self.config.get("skipped") or {})

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
        """Store the result in ``adata.uns[key]``, the tables as DataFrames (scanpy's way).

        ``uns[key]`` holds ``scores`` (``{key: value}``), ``per_topic`` (``top_genes`` joined by
        ``,``), one DataFrame per detail table (``ora``, ``gsea``, ``clustering``) and
        ``config_json`` / ``info_json`` (the config and facts as JSON text). The AnnData can be
        written with ``write_h5ad``; read it back with :func:`get_table` or :meth:`from_uns`.
        """
        per_topic = self.per_topic
        if "top_genes" in per_topic:
            per_topic = per_topic.assign(top_genes=per_topic["top_genes"].map(",".join))
        adata.uns[key] = {
            "scores": {k: float(v) for k, v in self.scores.items()},
            "config_json": json.dumps(_json_safe(self.config)),
            "info_json": json.dumps(_json_safe(self.info)),
            "warnings": list(self.warnings),
            "per_topic": _uns_frame(per_topic.reset_index()),
            **{name: _uns_frame(table) for name, table in self.details.items()},
        }

    @classmethod
    def from_uns(cls, adata: AnnData, key: str = "topiceval") -> Evaluation:
        """The :class:`Evaluation` that :meth:`to_uns` stored (also after ``write_h5ad`` / ``read_h5ad``)."""
        stored = _stored(adata, key)
        per_topic = get_table(adata, "per_topic", key)
        if "topic" in per_topic:
            per_topic = per_topic.set_index("topic")
        if "top_genes" in per_topic:
            per_topic["top_genes"] = per_topic["top_genes"].map(lambda text: text.split(",") if text else [])
        config = json.loads(str(stored["config_json"]))
        scores = pd.Series({k: float(v) for k, v in dict(stored["scores"]).items()}, dtype=float,
                           name=config["model"]["name"])
        scores = scores.reindex([k for k in _score_order() if k in scores.index]
                                + [k for k in scores.index if k not in _score_order()])
        details = {name: get_table(adata, name, key) for name in _DETAIL_NAMES if name in stored}
        return cls(scores, per_topic, config, json.loads(str(stored.get("info_json", "{}"))), details,
                   [str(w) for w in stored.get("warnings", [])])


_DETAIL_NAMES = (*(family.detail for family in FAMILIES if family.detail), "bootstrap")


def _score_order() -> list[str]:
    return [key for family in FAMILIES for key in family.keys]


def _uns_frame(table: pd.DataFrame) -> pd.DataFrame:
    """A copy h5ad can store: object columns as text (missing values as empty text)."""
    out = table.copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                           for v in out[column]]
    return out.reset_index(drop=True)


def _stored(adata: AnnData, key: str) -> Mapping[str, Any]:
    if key not in adata.uns:
        raise InputError(f"adata.uns has no {key!r} (Evaluation.to_uns(adata) writes it); "
                         f"uns keys: {preview(adata.uns.keys()) or 'none'}")
    return adata.uns[key]


def get_table(adata: AnnData, table: str = "per_topic", key: str = "topiceval") -> pd.DataFrame:
    """A table that :meth:`Evaluation.to_uns` stored, as a DataFrame (like ``sc.get.rank_genes_groups_df``).

    Parameters
    ----------
    adata
        The AnnData (in memory or read back from h5ad).
    table
        ``"per_topic"``, ``"scores"`` (``metric, value``) or a detail table (``"ora"``, ``"gsea"``,
        ``"clustering"``).
    key
        The ``uns`` key given to ``to_uns``.
    """
    stored = _stored(adata, key)
    if table == "scores":
        scores = dict(stored["scores"])
        return pd.DataFrame({"metric": list(scores), "value": [float(v) for v in scores.values()]})
    if table not in stored or not isinstance(stored[table], pd.DataFrame):
        names = ["scores"] + [k for k, v in stored.items() if isinstance(v, pd.DataFrame)]
        raise InputError(f"uns[{key!r}] has no table {table!r}; tables: {', '.join(names)}")
    return stored[table].copy()


# --------------------------------------------------------------------------- evaluate
def evaluate(
    data: TopicModel | TopicOutputs | AnnData,
    gene_sets: GeneSets | Mapping[str, Iterable[str]] | PathLike | None = None,
    labels: Sequence[Any] | np.ndarray | pd.Series | str | None = None,
    metrics: str | Iterable[str] | None = None,
    *,
    adata: AnnData | None = None,
    topic_gene_key: str | None = None,
    cell_topic_key: str | None = None,
    embedding_key: str | None = None,
    name: str | None = None,
    **options: Any,
) -> Evaluation:
    """Score a topic model, its outputs or an AnnData on the requested metrics.

    Parameters
    ----------
    data
        An AnnData holding the model's results (``varm`` / ``obsm``, read by
        :meth:`TopicOutputs.from_anndata <topiceval.protocol.TopicOutputs.from_anndata>` with the
        ``*_key`` arguments), :class:`~topiceval.protocol.TopicOutputs` (e.g. from
        :func:`topiceval.read_outputs`), or a :class:`~topiceval.protocol.TopicModel` (then
        ``adata`` supplies the cells).
    gene_sets
        Collection for TC and enrichment: :class:`~topiceval.gene_sets.GeneSets`, a GMT path, a
        shipped collection name or ``{name: genes}``.
    labels
        Cell-type labels (one per cell), or the name of an ``obs`` column (of ``data`` when it is
        an AnnData, else of ``adata``, else of the outputs' ``obs``).
    metrics
        Family names (``"tc,td,tq,ip"`` or a list; aliases ``ari`` / ``nmi`` for ``clustering``),
        ``"all"``, or ``None`` for TC, TD, TQ and IP where their inputs are given: the defaults
        that cannot run are listed with the reason in ``config["skipped"]``
        (:attr:`Evaluation.skipped`). ORA, GSEA and clustering are asked for by name.
    adata
        Cells for a model's ``cell_topic(adata)``, and the source of ``labels`` given by name.
    topic_gene_key, cell_topic_key, embedding_key
        Keys of ``data.varm`` / ``data.obsm`` when ``data`` is an AnnData (default: what
        topiceval's own models and adapters write; see ``TopicOutputs.from_anndata``).
        ``embedding_key`` alone scores a cell embedding (``metrics="ari,nmi"``).
    name
        Model name for reports (default: the model's).
    **options
        :class:`EvaluationOptions` fields (every family's options; ``topiceval score --help`` and
        the README's options table list them): ``top_n``, ``tc_zero_cooccurrence``,
        ``td_method``, ``seed``, ``ora_*``, ``gsea_*``, ``n_jobs``, ``cluster_*``.

    Returns
    -------
    Evaluation

    Raises
    ------
    InputError
        Unknown metric or option, a metric whose input is missing, shapes that disagree, NaN,
        gene sets sharing no gene with the model, no metric able to run.
    """
    opts = EvaluationOptions.from_kwargs(options)
    keys = {"topic_gene_key": topic_gene_key, "cell_topic_key": cell_topic_key, "embedding_key": embedding_key}
    obs = None
    if _is_anndata(data):
        outputs = TopicOutputs.from_anndata(data, **keys, name=name)
        obs = data.obs
    else:
        given = [k for k, v in keys.items() if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} read an AnnData, but evaluate() was given "
                             f"{type(data).__name__}")
        outputs = as_outputs(data, adata)
        obs = outputs.obs
    if adata is not None:
        obs = adata.obs
    if name is not None:
        outputs = dataclasses.replace(outputs, name=name)

    if isinstance(labels, str):
        if obs is None:
            raise InputError(f"labels={labels!r} names an obs column, but no AnnData (adata=...) was given")
        if labels not in obs:
            raise InputError(f"no obs column {labels!r}; obs columns: {preview(obs.columns, 30)}")
        labels = obs[labels]

    available = {"gene_sets"} if gene_sets is not None else set()
    if outputs.topic_gene is not None:
        available.add("topic_gene")
    if outputs.cell_topic is not None:
        available.add("cell_topic")
    if outputs.n_cells is not None:
        available.add("cells")
    if labels is not None:
        available.add("labels")
    order = resolve_metrics(metrics, available)
    skipped = {}
    if metrics is None:
        for metric in DEFAULT_METRICS:
            missing = [need for need in METRICS[metric].needs if need not in available]
            if missing:
                skipped[metric] = "needs " + " and ".join(NEEDS[m] for m in missing)
        if not order:
            raise InputError("no default metric can run (" + "; ".join(f"{m} {why}" for m, why in skipped.items())
                             + "); for a cell embedding alone ask for metrics='ari,nmi' with labels")
    for metric in order:
        missing = [need for need in METRICS[metric].needs if need not in available]
        if missing:
            raise InputError(f"metric {metric!r} needs {' and '.join(NEEDS[m] for m in missing)}")
    if outputs.topic_gene is not None:
        check_top_n(opts.top_n, outputs.n_genes)

    needed = {need for metric in order for need in METRICS[metric].needs}
    collection = load(gene_sets) if "gene_sets" in needed else None
    label_values = None
    if "labels" in needed:
        label_values = check_labels(labels, outputs.n_cells)  # type: ignore[arg-type]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coverage = None
        if collection is not None:
            coverage = collection.coverage(outputs.gene_names)
            _warn_if_prior(outputs, collection)
        inputs = ScoringInput(outputs.topic_gene, outputs.gene_names, outputs.cell_topic,
                              outputs.cell_embedding, label_values, collection)
        results: list[tuple[str, MetricResult]] = []
        for metric in order:
            family = METRICS[metric]
            result = family.compute(inputs, opts.for_family(metric))
            for key in result.scores.index:
                inputs.results[str(key)] = result
            results.append((metric, result))
    messages = []
    for w in caught:
        messages.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    scores = pd.Series({key: result[key] for _, result in results for key in result.scores.index},
                       dtype=float, name=outputs.name)
    info = {str(key): result.info_for(str(key)) for _, result in results for key in result.scores.index}
    details = {METRICS[metric].detail: result.table for metric, result in results
               if METRICS[metric].detail and result.table is not None}
    intervals = [{"metric": key, "value": scores[key], **{k: facts["ci"][k] for k in ("low", "high", "level", "n_boot")}}
                 for key, facts in info.items() if facts.get("ci")]
    if intervals:  # bootstrap intervals (n_boot), one row per score that has one
        details["bootstrap"] = pd.DataFrame(intervals)
    per_topic = _per_topic_table(outputs, inputs, opts.top_n, results)
    config = _config(outputs, order, opts, collection, coverage, label_values, skipped)
    return Evaluation(scores, per_topic, config, info, details, messages)


def _warn_if_prior(outputs: TopicOutputs, collection: GeneSets) -> None:
    """Warn when the gene sets are the collection the model was trained on as a prior (Spectra
    records it in ``metadata["prior_gene_sets"]``): TC, ORA and GSEA on it measure the prior."""
    prior = (outputs.metadata or {}).get("prior_gene_sets")
    if not isinstance(prior, Mapping):
        return
    ours = {value for key in ("sha256", "content_sha256") if (value := collection.config().get(key))}
    theirs = {value for key in ("sha256", "content_sha256") if (value := prior.get(key))}
    if ours & theirs:
        warnings.warn(f"{outputs.name}: these gene sets are the prior the model was trained on "
                      f"({prior.get('source') or prior.get('name') or 'same sha256'}); scores computed on them "
                      "(TC, TQ, ORA, GSEA) are circular", UserWarning, stacklevel=3)


def _is_anndata(obj: Any) -> bool:
    import sys

    if "anndata" not in sys.modules:  # no AnnData exists before anndata is imported (saves its import)
        return False
    try:
        from anndata import AnnData
    except ImportError:  # pragma: no cover - anndata is a core dependency
        return False
    return isinstance(obj, AnnData)


_GENE_SET_HASH_KEYS = ("content_sha256", "case", "filters", "species_match")

def _per_topic_table(outputs: TopicOutputs, inputs: ScoringInput, top_n: int,
                     results: list[tuple[str, MetricResult]]) -> pd.DataFrame:
    """One row per topic: top genes, then each family's per-topic columns (a column named like a
    score key keeps its name, and so does one already prefixed with the family's name
    (``celltype_best_type``); others get the family's first key as prefix: ``TD_exclusive_share``)."""
    n_topics = outputs.n_topics or 0
    table = pd.DataFrame(index=pd.RangeIndex(n_topics, name="topic"))
    if outputs.topic_gene is not None:
        table["top_genes"] = [list(outputs.gene_names[row]) for row in inputs.top_genes(top_n)]
    for metric, result in results:
        if result.per_topic is None:
            continue
        for column in result.per_topic.columns:
            label = column if column in result.scores.index or column.startswith(f"{metric}_") \
                else f"{result.name}_{column}"
            table[label] = result.per_topic[column].to_numpy()
    return table


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
    opts: Any,
    collection: GeneSets | None,
    coverage: Any,
    labels: np.ndarray | None,
    skipped: dict[str, str],
) -> dict[str, Any]:
    runtime = opts.runtime()
    numbers = {"metrics": order, "options": opts.hashed(), "gene_sets": None}
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
        "skipped": skipped,
        "runtime": runtime,
        "versions": _versions(),
    }
