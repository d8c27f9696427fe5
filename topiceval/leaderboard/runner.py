"""Run a leaderboard: ``datasets x models x seeds``, each trained model scored on every collection.

Training goes through :mod:`topiceval.adapters.registry` (:func:`~topiceval.adapters.registry.train`
writes the run folder), scoring through :func:`topiceval.evaluate`; this module computes no metric.

Cache (content-addressed, ``CACHE/``; see :func:`run`):

* ``data/<key>.h5ad``: a dataset as the models read it (count datasets preprocessed by
  :func:`topiceval.datasets.preprocess`); ``key`` hashes the source files' sha256 and the
  preprocessing options;
* ``runs/<key>/``: the registry's run folder (``outputs.h5ad``, ``config.json``, ``model/``);
  ``key`` hashes the data key, the model name, every training setting, the seed and the versions
  of topiceval and of the model's libraries;
* ``scores/<key>/``: ``evaluation.json`` (:meth:`topiceval.Evaluation.to_json`) and the
  significant rows of the ORA / GSEA tables (``ora.csv``, ``gsea.csv``); ``key`` hashes the run
  key, the gene sets' content hash, case rule and filters, the metrics and the evaluation options.

Every entry is written beside its final place and renamed into it when complete, so a killed run
leaves no half-written entry, and the next run finds every finished (model, dataset, seed) cell
and score and recomputes only the rest. Skipped and failed cells are not cached (they are retried).

A cache lives on one machine. A published report (the folder :meth:`Results.write` wrote) can
stand in for cache entries that are not there (``published`` of :func:`run`): its finished
cells whose train key (so data, settings, seed and library versions) and scoring configuration
are those of this run are carried into the new report as published, not recomputed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from topiceval._utils import PathLike, as_path, sha256_file
from topiceval.errors import InputError, TopicEvalError
from topiceval.io import atomic_path, make_temp_dir, write_json
from topiceval.metrics.registry import METRICS, canonical_metric

from . import history, statistics
from .config import (
    CollectionSpec,
    DatasetSpec,
    LeaderboardConfig,
    ModelSpec,
    default_cache_dir,
    resolve_gene_set_spec,
    stable_hash,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from topiceval.adapters.registry import ModelEntry

__all__ = [
    "LOG_FILE",
    "MISSING",
    "PUBLISHED",
    "CellOutcome",
    "CellTask",
    "PreparedDataset",
    "Results",
    "ScoreTask",
    "check_paths",
    "prepare_dataset",
    "run",
]

LOG_FILE = "run.log"
#: Seconds a cached score took to compute (``scores/<key>/timing.json``).
TIMING_FILE = "timing.json"
#: Status of a cell that a cache-only run found unfinished (``cached_only`` of :func:`run`).
MISSING = "missing"
#: ``source`` of a cell carried over from a published report (``published`` of :func:`run`);
#: every other cell's is ``"cache"``.
PUBLISHED = "published"
logger = logging.getLogger("topiceval.leaderboard")

#: Score keys that do not depend on the gene sets (the same for every collection).
_DETAIL_COLUMNS = {
    "ora": ["topic", "term", "overlap", "set_size", "pval", "padj"],
    "gsea": ["topic", "term", "set_size", "es", "nes", "pval", "fdr"],
}


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class PreparedDataset:
    """A dataset ready for training (or the reason it cannot be used).

    Attributes
    ----------
    name, species, label_key, values
        As in :class:`~topiceval.leaderboard.config.DatasetSpec`, filled from the registry.
    path
        The cached h5ad the models read (``None`` when skipped).
    key
        Content hash of the source files and the preprocessing.
    n_cells, n_genes, n_types
        Shape the models see.
    skip_reason
        Why no model can run on it (``None``: usable).
    info
        Citation, source, preprocessing record.
    """

    name: str
    species: str
    label_key: str
    values: str
    path: str | None
    key: str
    n_cells: int
    n_genes: int
    n_types: int
    skip_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ScoreTask:
    """Scoring one trained model against one collection."""

    collection: str
    spec: str | tuple[str, ...]  # a tuple: the union of several collections
    species: str
    metrics: tuple[str, ...]
    min_size: int | None
    max_size: int | None
    key: str


@dataclass(frozen=True)
class CellTask:
    """One (dataset, model, seed) cell: train (or read from the cache), then score."""

    dataset: PreparedDataset
    model: ModelSpec
    entry: ModelEntry
    seed: int
    train_key: str
    #: Hash of :func:`train_settings` (no versions): with the evaluation's ``config_sha256`` it
    #: identifies the configuration of a score in a regression baseline.
    settings_key: str
    scores: tuple[ScoreTask, ...]
    evaluation: dict[str, Any]
    cache: str
    threads: int


@dataclass
class CellOutcome:
    """What happened to one cell (returned by the workers)."""

    dataset: str
    model: str
    seed: int
    status: str  # "done", "skipped", "failed", or "missing" (cache-only runs)
    reason: str = ""
    train_key: str = ""
    settings_key: str = ""
    trained: bool = False
    train_s: float = float("nan")
    score_keys: dict[str, str] = field(default_factory=dict)
    scored: dict[str, bool] = field(default_factory=dict)
    score_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    cpu_s: float = 0.0
    wall_s: float = 0.0
    #: Hashes of the gene-set collection the model used as prior (``info["prior_gene_sets"]`` of
    #: its ``config.json``: file and content sha256, space-separated); empty when it used none.
    prior_sha256: str = ""
    #: per scored collection, how many sets of the model's gene-set prior reappear in it
    prior_overlap: dict[str, dict[str, int]] = field(default_factory=dict)
    #: ``"cache"``, or :data:`PUBLISHED`: carried over from a published report, whose row this
    #: run copies (its run and scores are not in this cache)
    source: str = "cache"


def readable(path: PathLike) -> None:
    """Give a written file the permissions of a normally created one (atomic writes make 0600)."""
    from topiceval.io import follow_umask

    follow_umask(path)


# --------------------------------------------------------------------------- datasets
def _dataset_meta(spec: DatasetSpec) -> dict[str, Any]:
    """Species, label key, values and source files of a dataset spec."""
    from topiceval.datasets import DATASETS, DEFAULT, shared_data_dir

    from .config import DEFAULT_NAMES

    if spec.path is not None:
        path = as_path(spec.path)
        return {"species": spec.species, "label_key": spec.label_key, "values": spec.values or "counts",
                "files": [path], "info": {"source": str(path)}}
    if spec.name in DEFAULT_NAMES:
        import topiceval.datasets as ds

        info = DEFAULT
        files = [Path(ds.__file__).resolve().parent / info.files[0]]
    else:
        info = DATASETS[spec.name]
        files = [] if info.values == "none" else [shared_data_dir() / f for f in info.files]
    return {
        "species": spec.species or info.species,
        "label_key": spec.label_key or info.label_key,
        "values": spec.values or info.values,
        "files": files,
        "info": {"registry_name": info.name, "description": info.description, "citation": info.citation,
                 "accession": info.accession, "licence": info.licence, "n_types": info.n_types,
                 "registry_gene_sets": info.gene_sets},
    }


def _load_raw(spec: DatasetSpec, meta: dict[str, Any]) -> AnnData:
    from topiceval import datasets

    if spec.path is not None:
        return datasets.read(spec.path, label_key=meta["label_key"])
    from .config import DEFAULT_NAMES

    if spec.name in DEFAULT_NAMES:
        return datasets.load_default()
    return datasets.load_dataset(spec.name)


def _embeddings_only(spec: DatasetSpec, meta: dict[str, Any], key: str, root: Path) -> tuple[str | None, int]:
    """Cache the cells, labels and ``obsm`` embeddings of a dataset without expression matrix as
    ``root/<key>.h5ad`` (``(None, 0)`` when it has no file or no embedding)."""
    files = meta["files"]
    if spec.path is None and not files:  # a registry dataset: its files hold the cells and embeddings
        from topiceval.datasets import DATASETS, shared_data_dir

        info = DATASETS.get(spec.name)
        files = [shared_data_dir() / f for f in info.files] if info is not None else []
    if not files or not all(Path(f).exists() for f in files):
        return None, 0
    target = root / f"{key}.h5ad"
    if not target.exists():
        import anndata

        adata = _load_raw(spec, meta)
        if not len(adata.obsm) or meta["label_key"] not in adata.obs:
            return None, 0
        labels = adata.obs[meta["label_key"]].astype(str)
        slim = anndata.AnnData(obs=pd.DataFrame({meta["label_key"]: pd.Categorical(labels)},
                                                index=adata.obs_names.astype(str)),
                               obsm={k: np.asarray(v) for k, v in adata.obsm.items()})
        root.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=".h5ad") as tmp:
            slim.write_h5ad(tmp)
    from topiceval.io import read_obs

    return str(target), len(read_obs(target))


def prepare_dataset(spec: DatasetSpec, n_top_genes: int | None, cache: PathLike) -> PreparedDataset:
    """Load a dataset, preprocess it if it holds counts, and cache it as an h5ad.

    Parameters
    ----------
    spec
        The dataset.
    n_top_genes
        Highly variable genes kept for count data (``None``: all genes).
    cache
        Cache folder; the result is ``cache/data/<key>.h5ad``.

    Returns
    -------
    PreparedDataset
        With ``skip_reason`` set (and no file) for a dataset without an expression matrix.
    """
    meta = _dataset_meta(spec)
    files = meta["files"]
    source = {"name": spec.name, "path": spec.path, "values": meta["values"], "label_key": meta["label_key"],
              "files": [sha256_file(f) for f in files if Path(f).exists()]}
    preprocessing = {"n_top_genes": n_top_genes} if meta["values"] == "counts" else None
    key = stable_hash({"source": source, "preprocessing": preprocessing})
    info = dict(meta["info"], preprocessing=preprocessing, source_sha256=source["files"])
    if meta["values"] == "none":
        # no expression matrix: no topic model runs on it, but its cell embeddings (obsm) are kept
        # for the clustering-only rows (models whose input is "embedding")
        reason = "no expression matrix (the distributed data hold cell types and a cell embedding only)"
        path, n_cells = _embeddings_only(spec, meta, key, as_path(cache) / "data")
        return PreparedDataset(spec.name, meta["species"], meta["label_key"], "none", path, key, n_cells, 0,
                               int(meta["info"].get("n_types", 0)), skip_reason=reason, info=info)
    missing = [str(f) for f in files if not Path(f).exists()]
    if missing:
        raise InputError(f"dataset {spec.name!r}: file(s) not found: {', '.join(missing)}")
    root = as_path(cache) / "data"
    target = root / f"{key}.h5ad"
    record_path = root / f"{key}.json"
    if target.exists() and record_path.exists():
        record = json.loads(record_path.read_text())
    else:
        import anndata

        adata = _load_raw(spec, meta)
        if meta["label_key"] not in adata.obs:
            raise InputError(f"dataset {spec.name!r} has no obs column {meta['label_key']!r}")
        if meta["values"] == "counts":
            from topiceval.datasets import UNS_KEY, preprocess

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                adata = preprocess(adata, n_top_genes=n_top_genes)
            info["preprocessing"] = adata.uns.get(UNS_KEY)
        labels = adata.obs[meta["label_key"]].astype(str)
        slim = anndata.AnnData(X=adata.X, obs=pd.DataFrame({meta["label_key"]: pd.Categorical(labels)},
                                                          index=adata.obs_names.astype(str)),
                               var=pd.DataFrame(index=adata.var_names.astype(str)),
                               layers=dict(adata.layers))
        with atomic_path(target, suffix=".h5ad") as tmp:
            slim.write_h5ad(tmp)
        record = {"n_cells": int(slim.n_obs), "n_genes": int(slim.n_vars),
                  "n_types": int(labels.nunique()), "preprocessing": info["preprocessing"]}
        write_json(record, record_path)
    info["preprocessing"] = record.get("preprocessing")
    return PreparedDataset(spec.name, meta["species"], meta["label_key"], meta["values"], str(target), key,
                           record["n_cells"], record["n_genes"], record["n_types"], info=info)


# --------------------------------------------------------------------------- keys
def _library_versions(entry: ModelEntry) -> dict[str, str]:
    out = {}
    for name in ("topiceval", "scikit-learn", *entry.requires):
        dist = {"sklearn": "scikit-learn", "scvi": "scvi-tools", "Spectra": "scspectra"}.get(name, name)
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def train_settings(dataset: PreparedDataset, model: ModelSpec, seed: int) -> dict[str, Any]:
    """What defines a trained model apart from code versions: data, model settings, seed."""
    return {"data": dataset.key, "model": model.to_dict(), "seed": seed, "label_key": dataset.label_key}


def train_key(dataset: PreparedDataset, model: ModelSpec, seed: int, entry: ModelEntry) -> str:
    """Cache key of a trained model: :func:`train_settings` and the versions of topiceval and of
    the model's libraries (an upgrade retrains)."""
    return stable_hash({**train_settings(dataset, model, seed), "versions": _library_versions(entry)})


@functools.lru_cache(maxsize=16)
def _gene_sets(spec: str | tuple[str, ...], species: str, min_size: int | None, max_size: int | None):
    from topiceval.gene_sets import load

    return load(spec, species=species, min_size=min_size, max_size=max_size, progress=False)


def _gene_set_identity(spec: str | tuple[str, ...], species: str, min_size: int | None, max_size: int | None,
                       genes_path: str | None = None) -> dict[str, Any]:
    """What of a collection decides a cell's scores: its content and matching rules and, for the
    prepared dataset at ``genes_path``, the genes matched through the symbol-and-ID rule
    (:meth:`~topiceval.gene_sets.GeneSets.symbol_aliases`; the key only carries them when
    there are any, so datasets without such names keep their keys)."""
    collection = _gene_sets(spec, species, min_size, max_size)
    config = collection.config()
    identity = {key: config.get(key) for key in ("content_sha256", "case", "filters", "species_match")}
    if genes_path is not None:
        aliases = collection.symbol_aliases(_var_names(genes_path))
        if aliases:
            identity["symbol_aliases"] = stable_hash(aliases)
    return identity


@functools.lru_cache(maxsize=16)
def _var_names(path: str) -> tuple[str, ...]:
    from topiceval.io import read_var_names

    return tuple(read_var_names(path))


# --------------------------------------------------------------------------- worker
@contextlib.contextmanager
def _limits(threads: int) -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:  # pragma: no cover - scikit-learn depends on it
        yield
        return
    with threadpool_limits(limits=threads):
        yield


def _ensure_registered(entry: ModelEntry) -> None:
    from topiceval.adapters import registry

    try:
        known = registry.get(entry.name)
    except InputError:
        known = None
    if known != entry:
        registry.register(entry, replace=True)


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        os.replace(staging, target)
    except OSError:
        if not target.is_dir():  # pragma: no cover - a real file-system error
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another worker finished it first


def _score(task: CellTask, score: ScoreTask, run_dir: Path) -> float:
    """Score a trained model against one collection into ``scores/<key>/``; returns seconds."""
    from topiceval.adapters.registry import OUTPUTS_FILE
    from topiceval.evaluate import evaluate
    from topiceval.io import read_label_column, read_outputs_h5ad

    started = time.perf_counter()
    embedding_only = task.entry.kind == "embedding"
    outputs = read_outputs_h5ad(run_dir / OUTPUTS_FILE, require_topic_gene=not embedding_only)
    labels = read_label_column(run_dir / OUTPUTS_FILE, task.dataset.label_key)
    gene_sets = None if embedding_only else _gene_sets(score.spec, score.species, score.min_size, score.max_size)
    result = evaluate(outputs, gene_sets=gene_sets, labels=labels, metrics=list(score.metrics),
                      name=task.model.name, **task.evaluation)
    root = Path(task.cache) / "scores"
    root.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(f".{score.key}.", root)
    try:
        result.to_json(staging / "evaluation.json")
        # how long this score took, kept with it so that a resumed run still knows its cost
        elapsed = time.perf_counter() - started
        write_json({"score_s": elapsed}, staging / TIMING_FILE)
        for name, columns in _DETAIL_COLUMNS.items():
            table = result.details.get(name)
            if table is not None:
                significant = table.loc[table["significant"].astype(bool), columns]
                significant.to_csv(staging / f"{name}.csv", index=False)
        _move_into_place(staging, root / score.key)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return elapsed


def _prior_overlap(task: CellTask, spec: str) -> dict[str, dict[str, int]]:
    """For each collection the cell is scored against, the sets of the model's prior that
    reappear in it (:func:`topiceval.gene_sets.overlap`, Jaccard >= 0.5)."""
    return {score.collection: dict(_overlap_counts(task.entry, spec, score.spec, score.species, score.min_size,
                                                   score.max_size))  # a copy: the cached one stays as it is
            for score in task.scores}


@functools.lru_cache(maxsize=64)
def _overlap_counts(entry: ModelEntry, prior_spec: str, spec: str | tuple[str, ...], species: str,
                    min_size: int | None, max_size: int | None) -> dict[str, int]:
    """:func:`_prior_overlap` for one collection, computed once per process: every dataset and
    seed of a model shares its prior and the collections."""
    from topiceval.gene_sets import overlap

    found = overlap(_prior(entry, prior_spec), _gene_sets(spec, species, min_size, max_size))
    return {k: found[k] for k in ("n_sets", "identical", "similar")}


@functools.lru_cache(maxsize=8)
def _prior(entry: ModelEntry, spec: str) -> Any:
    """The model's gene-set prior, read once per process."""
    return entry.load_prior(spec)


#: Folder of the training checkpoints of resumable models, inside the leaderboard cache (one per
#: cell, named by its train key: a file, or a folder for cNMF).
CHECKPOINT_DIR = "checkpoints"


def _remove_checkpoint(path: Path) -> None:
    """Remove a resumable cell's checkpoint: a file (d-scIGM, Spectra) or a folder (cNMF)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _no_counts_reason(dataset: PreparedDataset, model: str) -> str:
    """Why a count model is skipped on a dataset distributed without raw counts."""
    return (f"{dataset.name} holds {dataset.values.replace('_', ' ')}, no raw counts: model {model!r} "
            "trains on raw counts")


def run_cell(task: CellTask) -> CellOutcome:
    """Train (unless cached) and score (unless cached) one cell; never raises for a user error.

    Input errors from the model (e.g. a count model on log-scaled data) make the cell
    ``"skipped"`` with the message as the reason; any other exception makes it ``"failed"`` with
    the traceback in ``error``. ``KeyboardInterrupt`` propagates.
    """
    from topiceval.adapters import _common, registry

    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcome = CellOutcome(task.dataset.name, task.model.name, task.seed, "done", train_key=task.train_key,
                          settings_key=task.settings_key)
    run_dir = Path(task.cache) / "runs" / task.train_key
    with warnings.catch_warnings(record=True) as caught, _limits(task.threads):
        warnings.simplefilter("always")
        try:
            if not (run_dir / registry.CONFIG_FILE).is_file():
                _ensure_registered(task.entry)
                options = dict(task.model.options)
                if task.entry.resumable and "checkpoint" not in options:
                    # a cell killed part-way resumes from here (the model removes the file when done)
                    options["checkpoint"] = str(Path(task.cache) / CHECKPOINT_DIR / task.train_key)
                params = registry.TrainParams(
                    n_topics=task.model.n_topics, epochs=task.model.epochs, seed=task.seed,
                    layer=task.model.layer, embedding_key=task.model.embedding_key,
                    label_key=task.dataset.label_key, options=options,
                    progress=False,  # the run has its own bar over the cells; an explicit option still wins
                )
                # the heap keeps what a training step frees for the next one (a third of a d-scIGM
                # epoch went to faulting it in again), and gives it back when the cell is trained
                _common.retain_freed_memory()
                try:
                    registry.train(task.entry.name, task.dataset.path, run_dir, params=params, overwrite=True)
                finally:
                    _common.trim_heap()
                outcome.trained = True
            config = json.loads((run_dir / registry.CONFIG_FILE).read_text())
            timings = config["timings"]
            outcome.train_s = float(timings["fit_s"]) + float(timings.get("resumed_fit_s") or 0.0)
            prior = (config.get("info") or {}).get("prior_gene_sets") or {}
            outcome.prior_sha256 = " ".join(dict.fromkeys(
                str(prior[k]) for k in ("sha256", "content_sha256") if prior.get(k)))
            if prior.get("spec") and task.entry.prior:
                outcome.prior_overlap = _prior_overlap(task, str(prior["spec"]))
            for score in task.scores:
                outcome.score_keys[score.collection] = score.key
                folder = Path(task.cache) / "scores" / score.key
                if (folder / "evaluation.json").is_file():
                    outcome.scored[score.collection] = False
                    if (folder / TIMING_FILE).is_file():  # absent for scores cached by older versions
                        outcome.score_s[score.collection] = float(json.loads((folder / TIMING_FILE).read_text())["score_s"])
                    continue
                outcome.score_s[score.collection] = _score(task, score, run_dir)
                outcome.scored[score.collection] = True
        except TopicEvalError as exc:
            outcome.status = "skipped" if not outcome.score_keys else "failed"
            outcome.reason = str(exc).splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - recorded, the other cells go on
            outcome.status = "failed"
            outcome.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            outcome.error = traceback.format_exc()
    seen = set()
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen:
            seen.add(text)
            outcome.warnings.append(text)
    outcome.cpu_s = time.process_time() - cpu0
    outcome.wall_s = time.perf_counter() - wall0
    return outcome


# --------------------------------------------------------------------------- results
@dataclass
class Results:
    """Everything a leaderboard run produced, as tables (what the report shows).

    Attributes
    ----------
    config
        :meth:`LeaderboardConfig.to_dict` plus run facts (``datasets``: the prepared datasets,
        ``collections``: each collection's gene-set record per species, ``notes``: metrics left
        out, ``started``, ``wall_s``, ``cpu_s``, versions).
    cells
        One row per (dataset, model, seed): ``status`` (done / skipped / failed), ``reason``,
        ``trained`` (computed in this run, else read from the cache), ``train_s`` (the fit, from
        ``config.json``), ``score_s`` (scoring, all collections, from each score's ``timing.json``;
        NaN where a cached score predates that record), ``cpu_s``, ``wall_s``, ``n_warnings``, ``train_key``, ``prior_sha256`` (the hashes of the gene sets a
        model such as Spectra used as prior; empty when none), ``source`` (``"cache"``, or
        ``"published"`` for a cell carried over from a published report, whose row is copied).
    scores
        Long table: ``dataset, species, model, seed, collection, metric, value, config_sha256``
        (``config_sha256`` hashes the evaluation's ``config_sha256`` with the data and training
        settings, not the package versions: what a regression baseline compares).
    per_topic
        ``dataset, model, seed, collection, topic, top_genes`` and the per-topic values (``TC``,
        ``ORA_N``, ``GSEA_N``, ...).
    pathways
        The most often enriched pathways of each (dataset, model, seed, collection, method): ``term,
        n_topics, best`` (smallest adjusted p / FDR).
    stability
        Topic stability of every pair of seeds: ``dataset, model, seed_a, seed_b, stability,
        n_matched`` (:mod:`topiceval.leaderboard.statistics`; empty with fewer than two seeds).
    """

    config: dict[str, Any]
    cells: pd.DataFrame
    scores: pd.DataFrame
    per_topic: pd.DataFrame
    pathways: pd.DataFrame
    stability: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=statistics.STABILITY_COLUMNS))

    FILES = ("scores.csv", "summary.csv", "cells.csv", "per_topic.csv", "pathways.csv", "comparisons.csv",
             "stability.csv", "results.json")

    def summary(self) -> pd.DataFrame:
        """Mean, sample sd and number of seeds of every (dataset, collection, model, metric)."""
        if self.scores.empty:
            return pd.DataFrame(columns=["dataset", "collection", "model", "metric", "mean", "sd", "n"])
        grouped = self.scores.groupby(["dataset", "collection", "model", "metric"], sort=False)["value"]
        out = grouped.agg(mean="mean", sd=lambda v: v.std(ddof=1) if v.notna().sum() > 1 else np.nan,
                          n=lambda v: int(v.notna().sum()))
        return statistics.stability_summary(out.reset_index(), self.stability)

    def baseline_entries(self) -> list[dict[str, Any]]:
        """One regression-baseline entry per (dataset, model, seed, collection)."""
        entries = []
        for (dataset, model, seed, collection), group in self.scores.groupby(
                ["dataset", "model", "seed", "collection"], sort=False):
            entries.append({
                "key": f"{dataset}/{model}/seed{seed}/{collection}",
                "config_sha256": str(group["config_sha256"].iloc[0]),
                "scores": {m: (None if pd.isna(v) else float(v)) for m, v in zip(group["metric"], group["value"], strict=True)},
            })
        return entries

    def write(self, folder: PathLike) -> list[Path]:
        """Write the tables as CSV and everything as ``results.json``, atomically."""
        target = as_path(folder)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in (("scores.csv", self.scores), ("summary.csv", self.summary()),
                            ("cells.csv", self.cells), ("per_topic.csv", self.per_topic),
                            ("pathways.csv", self.pathways), ("comparisons.csv", statistics.comparisons(self)),
                            ("stability.csv", self.stability)):
            path = target / name
            with atomic_path(path, suffix=".csv") as tmp:
                table.to_csv(tmp, index=False, float_format="%.10g")
            written.append(path)
        write_json(self.to_dict(), target / "results.json")
        written.append(target / "results.json")
        return written

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "topiceval-leaderboard",
            "version": 1,
            "config": self.config,
            "cells": self.cells.to_dict(orient="records"),
            "stability": self.stability.to_dict(orient="records"),
            "entries": self.baseline_entries(),
        }

    @classmethod
    def read(cls, folder: PathLike) -> Results:
        """Read back what :meth:`write` wrote."""
        target = as_path(folder)
        path = target / "results.json"
        if not path.is_file():
            raise InputError(f"no leaderboard results in {target} (results.json missing)")
        data = json.loads(path.read_text())

        def table(name: str, columns: list[str]) -> pd.DataFrame:
            file = target / name
            if not file.is_file():
                raise InputError(f"leaderboard results in {target} lack {name}")
            frame = pd.read_csv(file, keep_default_na=True)
            return frame if len(frame.columns) else pd.DataFrame(columns=columns)

        # cells and stability as written (the CSV files round to 10 digits and read empty text as
        # NaN), so that a report redrawn from its files (--report-only, --keep-published) has the
        # numbers of the run; results.json from before it held stability: the CSV file
        if "stability" in data:
            stability = pd.DataFrame(data["stability"], columns=statistics.STABILITY_COLUMNS)
        elif (target / "stability.csv").is_file():
            stability = table("stability.csv", statistics.STABILITY_COLUMNS)
        else:
            stability = pd.DataFrame(columns=statistics.STABILITY_COLUMNS)
        cells = (pd.DataFrame(data["cells"], columns=_CELL_COLUMNS) if data.get("cells")
                 else table("cells.csv", _CELL_COLUMNS))
        scores = table("scores.csv", _SCORE_COLUMNS)
        # the values as computed: results.json holds them in full (scores.csv has 10 digits, for
        # reading), so that statistics on read results are those of the run, ties and all
        exact = {entry["key"]: entry["scores"] for entry in data.get("entries") or []}
        if exact and not scores.empty:
            keys = (scores["dataset"].astype(str) + "/" + scores["model"].astype(str) + "/seed"
                    + scores["seed"].astype(str) + "/" + scores["collection"].astype(str))
            values = [exact.get(k, {}).get(m, v) for k, m, v in zip(keys, scores["metric"], scores["value"], strict=True)]
            scores["value"] = np.array([np.nan if v is None else v for v in values], dtype=float)
        return cls(config=data["config"], cells=cells,
                   scores=scores, per_topic=table("per_topic.csv", _TOPIC_COLUMNS),
                   pathways=table("pathways.csv", _PATHWAY_COLUMNS), stability=stability)


def _collect(config: dict[str, Any], tasks: Sequence[CellTask], outcomes: Sequence[CellOutcome],
             prepared: dict[str, PreparedDataset], cache: Path, published: Results | None = None) -> Results:
    order = {(t.dataset.name, t.model.name, t.seed): i for i, t in enumerate(tasks)}
    outcomes = sorted(outcomes, key=lambda o: order.get((o.dataset, o.model, o.seed), 10**9))
    cell_rows, score_rows, topic_rows, pathway_rows = [], [], [], []
    carried = [o for o in outcomes if o.source == PUBLISHED]
    for o in outcomes:
        if o.source == PUBLISHED:  # the published row, as it was (its times: those measured then)
            row = _published_rows(published.cells, o).iloc[0].to_dict()
            cell_rows.append({**{c: row.get(c, "") for c in _CELL_COLUMNS}, "trained": False, "source": PUBLISHED})
            continue
        # the warnings that qualify this cell's numbers, shown beside them in the report: the
        # scoring warnings of each collection (kept in evaluation.json, so cached scores keep
        # them) as "[collection] text", then the training warnings
        scored: list[str] = []
        for collection, key in (o.score_keys.items() if o.status == "done" else ()):
            evaluation_file = cache / "scores" / key / "evaluation.json"
            if evaluation_file.is_file():
                found = json.loads(evaluation_file.read_text())["config"].get("warnings") or []
                scored += [f"[{collection}] {text}" for text in dict.fromkeys(found)]
        others = [w for w in o.warnings if not any(w.endswith(t.split("] ", 1)[1]) for t in scored)]
        cell_rows.append({"dataset": o.dataset, "model": o.model, "seed": o.seed, "status": o.status,
                          "reason": o.reason, "trained": o.trained, "train_s": o.train_s,
                          "score_s": (float(sum(o.score_s.values())) if o.status == "done" and o.score_keys
                                      and set(o.score_s) == set(o.score_keys) else np.nan),
                          "cpu_s": o.cpu_s,
                          "wall_s": o.wall_s, "n_warnings": len(o.warnings), "train_key": o.train_key,
                          "prior_sha256": o.prior_sha256,
                          "prior_overlap": json.dumps(o.prior_overlap, sort_keys=True) if o.prior_overlap else "",
                          "warnings": "\n".join([*scored, *others]), "source": o.source})
        if o.status != "done":
            continue
        species = prepared[o.dataset].species
        for collection, key in o.score_keys.items():
            folder = cache / "scores" / key
            evaluation = json.loads((folder / "evaluation.json").read_text())
            config_hash = stable_hash({"evaluation": evaluation["config"]["config_sha256"], "train": o.settings_key})
            for metric, value in evaluation.items():
                if metric in ("config", "per_topic"):
                    continue
                score_rows.append({"dataset": o.dataset, "species": species, "model": o.model, "seed": o.seed,
                                   "collection": collection, "metric": metric,
                                   "value": np.nan if value is None else float(value),
                                   "config_sha256": config_hash})
            for record in evaluation["per_topic"]:
                row = {"dataset": o.dataset, "model": o.model, "seed": o.seed, "collection": collection}
                for column, value in record.items():
                    row[column] = " ".join(value) if column == "top_genes" else value
                topic_rows.append(row)
            for method, best in (("ora", "padj"), ("gsea", "fdr")):
                file = folder / f"{method}.csv"
                if not file.is_file() or file.stat().st_size == 0:
                    continue
                table = pd.read_csv(file)
                if table.empty:
                    continue
                counts = table.groupby("term").agg(n_topics=("topic", "nunique"), best=(best, "min"))
                counts = counts.sort_values(["n_topics", "best"], ascending=[False, True], kind="stable").head(10)
                for term, values in counts.iterrows():
                    pathway_rows.append({"dataset": o.dataset, "model": o.model, "seed": o.seed,
                                         "collection": collection, "method": method.upper(), "term": term,
                                         "n_topics": int(values["n_topics"]), "best": float(values["best"])})
    scores = pd.DataFrame(score_rows, columns=_SCORE_COLUMNS)
    per_topic = pd.DataFrame(topic_rows) if topic_rows else pd.DataFrame(columns=_TOPIC_COLUMNS)
    pathways = pd.DataFrame(pathway_rows, columns=_PATHWAY_COLUMNS)
    # topic stability over seed pairs: of two cells of the cache, from their topic-gene matrices;
    # of two carried cells, as published; a pair of one of each cannot be computed (a report
    # publishes no topic-gene matrix)
    pairs = statistics.stability_pairs([o for o in outcomes if o.source != PUBLISHED], cache)
    if carried:
        table = published.stability
        seeds = {(o.dataset, o.model, o.seed) for o in carried}
        both = [(d, m, int(a)) in seeds and (d, m, int(b)) in seeds
                for d, m, a, b in zip(table["dataset"], table["model"], table["seed_a"], table["seed_b"], strict=True)]
        pairs = _append(table.loc[np.asarray(both, dtype=bool), statistics.STABILITY_COLUMNS].reset_index(drop=True),
                        pairs)
        old = _published_rows(published.scores, *carried)
        scores = _append(scores, old[old["metric"] != statistics.STABILITY])  # stability: from the pairs, below
        per_topic = _append(per_topic, _published_rows(published.per_topic, *carried))
        pathways = _append(pathways, _published_rows(published.pathways, *carried))
    scores = statistics.add_stability_rows(scores, pairs)
    return Results(config=config, cells=pd.DataFrame(cell_rows, columns=_CELL_COLUMNS), scores=scores,
                   per_topic=per_topic, pathways=pathways, stability=pairs)


def _published_rows(table: pd.DataFrame, *cells: CellOutcome) -> pd.DataFrame:
    """The rows of a published table that belong to ``cells`` (by dataset, model and seed)."""
    wanted = {(o.dataset, o.model, o.seed) for o in cells}
    keep = [(d, m, int(s)) in wanted for d, m, s in zip(table["dataset"], table["model"], table["seed"], strict=True)]
    return table.loc[np.asarray(keep, dtype=bool)]  # a mask, also when empty (a list would pick columns)


def _append(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return frame
    return rows.reset_index(drop=True) if frame.empty else pd.concat([frame, rows], ignore_index=True)


def _check_published(published: Results, config: LeaderboardConfig, gene_sets: dict[str, dict[str, Any]]) -> None:
    """Raise unless the published report was scored as this run scores: the same collections
    (sources, metrics, size filters), evaluation options and gene-set contents. (The training
    side is checked cell by cell: a cell is carried only under its own train key.)"""
    record = published.config
    ours = config.to_dict()
    differ = [key for key in ("collections", "evaluation")
              if json.loads(json.dumps(record.get(key))) != json.loads(json.dumps(ours[key]))]
    theirs = record.get("gene_sets") or {}
    for name, per_species in gene_sets.items():
        for species, found in per_species.items():
            seen = (theirs.get(name) or {}).get(species)
            if seen is not None and json.loads(json.dumps(seen)) != json.loads(json.dumps(found)):
                differ.append(f"the {species} gene sets of collection {name!r}")
    if differ:
        raise InputError(f"the published report ({record.get('name')!r}) was scored with other "
                         f"{', '.join(differ)} than this config: its cells cannot stand in for this run's")


def _carry_published(tasks: Sequence[CellTask], published: Results,
                     cache: Path) -> tuple[list[CellTask], list[CellOutcome]]:
    """Split off the tasks that the cache lacks and the published report finished under the same
    train key: a ``"done"`` outcome with source :data:`PUBLISHED` for each; the other tasks."""
    cells = published.cells
    if cells.empty or "train_key" not in cells:
        return list(tasks), []
    done = cells[cells["status"] == "done"]
    finished = {(d, m, int(s)): str(k) for d, m, s, k in zip(done["dataset"], done["model"], done["seed"],
                                                              done["train_key"], strict=True)}
    cached = {id(t) for t in _split_cached(tasks, cache)[0]}
    keep, carried = [], []
    for task in tasks:
        where = (task.dataset.name, task.model.name, task.seed)
        if id(task) not in cached and task.entry.input != "embedding" and finished.get(where) == task.train_key:
            carried.append(CellOutcome(*where, "done", train_key=task.train_key, settings_key=task.settings_key,
                                       source=PUBLISHED))
        else:
            keep.append(task)
    return keep, carried


_CELL_COLUMNS = ["dataset", "model", "seed", "status", "reason", "trained", "train_s", "score_s", "cpu_s", "wall_s",
                 "n_warnings", "train_key", "prior_sha256", "prior_overlap", "warnings", "source"]
_SCORE_COLUMNS = ["dataset", "species", "model", "seed", "collection", "metric", "value", "config_sha256"]
_TOPIC_COLUMNS = ["dataset", "model", "seed", "collection", "topic", "top_genes"]
_PATHWAY_COLUMNS = ["dataset", "model", "seed", "collection", "method", "term", "n_topics", "best"]


# --------------------------------------------------------------------------- backends
def _sequential(tasks: Sequence[CellTask], n_jobs: int, scheduler: str | None) -> Iterator[CellOutcome]:
    for task in tasks:
        yield run_cell(task)


def _joblib(tasks: Sequence[CellTask], n_jobs: int, scheduler: str | None) -> Iterator[CellOutcome]:
    from joblib import Parallel, delayed

    if n_jobs == 1:
        yield from _sequential(tasks, n_jobs, scheduler)
        return
    # loky retires a worker whose memory grew by a few hundred MB (a trained torch model) once its
    # cell has returned, and warns about it; the next cell simply starts in a fresh worker.
    warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                            category=UserWarning)
    # batch_size=1: joblib's "auto" batching grows the batch while tasks return fast (a resumed
    # run's cached cells return in milliseconds), then hands the next slow cells to one worker as
    # a single batch, run one after another while the other workers idle
    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered",
                        inner_max_num_threads=1, pre_dispatch="n_jobs", batch_size=1)
    yield from parallel(delayed(run_cell)(task) for task in tasks)


def _dask(tasks: Sequence[CellTask], n_jobs: int, scheduler: str | None) -> Iterator[CellOutcome]:
    """Cells as dask futures. A cell ships paths, not data: each worker reads the prepared dataset
    from ``task.dataset.path`` in the cache and writes its run and scores there, so on several
    machines the cache must be a shared path (the same on every worker). A worker lost mid-cell
    (killed, out of memory) makes the scheduler rerun that cell on another worker (up to
    ``distributed.scheduler.allowed-failures`` times); finished cells are in the cache already, and
    the lost cell's half-written entry was never renamed into place."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ModuleNotFoundError:
        raise TopicEvalError('the dask backend needs dask.distributed: pip install "topiceval[dask]"') from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        futures = [client.submit(run_cell, task, pure=False, key=f"cell-{task.train_key[:16]}-{i}")
                   for i, task in enumerate(tasks)]
        for future in as_completed(futures):
            yield future.result()


_BACKENDS: dict[str, Callable[[Sequence[CellTask], int, str | None], Iterator[CellOutcome]]] = {
    "sequential": _sequential,
    "joblib": _joblib,
    "dask": _dask,
}


# --------------------------------------------------------------------------- run
def _setup_log(path: Path | None) -> logging.Handler | None:
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def _versions() -> dict[str, str]:
    import platform

    out = {"python": platform.python_version()}
    for name in ("topiceval", "numpy", "scipy", "pandas", "scikit-learn", "anndata", "torch", "scETM",
                 "scvi-tools", "igraph", "joblib", "dask", "distributed", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def check_paths(config: LeaderboardConfig) -> None:
    """Every file a config names must exist before any work starts (no report folder, log or
    dataset preparation for a run that cannot finish).

    Raises
    ------
    InputError
        Listing every missing dataset file and gene-set file, with the entry that names it.
    """
    from topiceval.gene_sets import SHIPPED

    missing: list[str] = []
    for spec in config.datasets:
        for path in _dataset_meta(spec)["files"]:
            if not Path(path).exists():
                missing.append(f"dataset {spec.name!r}: {path}")
    for collection in config.collections:
        for species, sources in collection.sources.items():
            for source in ([sources] if isinstance(sources, str) else sources):
                if source in SHIPPED or source.startswith("msigdb:"):
                    continue
                path = Path(resolve_gene_set_spec(source, config.root))
                if not path.is_file():
                    missing.append(f"collection {collection.name!r} ({species}): {path}")
    if missing:
        raise InputError(f"{len(missing)} file(s) named by the config do not exist, nothing was run: "
                         + "; ".join(missing))


def run(
    config: LeaderboardConfig,
    *,
    cache: PathLike | None = None,
    log: PathLike | None = None,
    backend: str | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    refresh: bool = False,
    cached_only: bool = False,
    published: Results | PathLike | None = None,
) -> Results:
    """Run (or resume) a leaderboard.

    Parameters
    ----------
    config
        What to run (:func:`~topiceval.leaderboard.config.load_config`).
    cache
        Cache folder (default: ``config.cache``, else ``$TOPICEVAL_CACHE/leaderboard`` or the
        user cache folder's ``leaderboard``).
    log
        Log file of this run (replaced); ``None``: no file.
    backend, n_jobs
        Override ``config.backend`` / ``config.n_jobs``: ``"joblib"`` (processes),
        ``"dask"`` (``dask.distributed``: the scheduler at ``config.scheduler``, else a
        ``LocalCluster`` of ``n_jobs`` single-threaded worker processes) or ``"sequential"``.
    progress
        Show a progress bar over the cells.
    refresh
        Ignore (and replace) the cached runs and scores of this configuration.
    cached_only
        Train and score nothing: collect the cells whose run and scores are all in the cache, and
        report every other cell as ``"missing"`` (with what it lacks). For a report of a run that
        is still going on in another process (a partial report); cannot be combined with
        ``refresh``. Models that train nothing (input ``"embedding"``: a stored cell embedding,
        such as scgpt) are read and scored as usual, which takes seconds.
    published
        A published report of this leaderboard (:class:`Results`, or the folder
        :meth:`Results.write` wrote), for a run on a machine whose cache lacks what the report's
        run had: each cell that the cache lacks and the report finished under the same train key
        (data, training settings, seed, versions of topiceval and of the model's libraries) is
        carried into the results as published (``source`` ``"published"`` in ``cells``), not
        retrained or rescored; the report's parts are kept in the run's history. Raises
        :class:`~topiceval.errors.InputError` if the report was scored otherwise (collections,
        evaluation options or gene-set contents differ). Topic stability pairs two carried
        cells as published and two cells of the cache from their topic-gene matrices; a pair of
        one of each cannot be computed (a report holds no topic-gene matrix) and is left out.
        Cannot be combined with ``refresh``.

    Returns
    -------
    Results

    Notes
    -----
    Every backend gives the same numbers: each cell runs with ``config.threads_per_cell`` BLAS and
    torch threads and its own seeds, whatever process it lands in.
    """
    from tqdm.auto import tqdm

    from topiceval.adapters import registry

    backend = backend or config.backend
    n_jobs = n_jobs or config.n_jobs
    if cached_only and refresh:
        raise InputError("cached_only reads the cache as it is: it cannot be combined with refresh")
    if published is not None and refresh:
        raise InputError("published carries finished cells over: it cannot be combined with refresh")
    if published is not None and not isinstance(published, Results):
        published = Results.read(published)
    if backend not in _BACKENDS:
        raise InputError(f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")
    check_paths(config)
    cache_root = as_path(cache) if cache is not None else (config.cache or default_cache_dir())
    cache_root = cache_root.resolve()
    cache_root.mkdir(parents=True, exist_ok=True)
    handler = _setup_log(as_path(log) if log is not None else None)
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        logger.info("leaderboard %r (config sha256 %s), cache %s, backend %s, %d job(s)",
                    config.name, config.sha256()[:12], cache_root, backend, n_jobs)
        notes: list[str] = []
        evaluation = dict(config.evaluation)
        prepared: dict[str, PreparedDataset] = {}
        for spec in tqdm(config.datasets, desc="datasets", unit="dataset", disable=not progress, leave=False):
            t0 = time.perf_counter()
            prepared[spec.name] = prepare_dataset(spec, config.n_top_genes, cache_root)
            p = prepared[spec.name]
            logger.info("dataset %s: %s", spec.name,
                        p.skip_reason or f"{p.n_cells} cells x {p.n_genes} genes, {p.n_types} types, "
                        f"{p.values} ({time.perf_counter() - t0:.1f} s)")

        collections: dict[str, dict[str, Any]] = {}
        score_plans: dict[str, list[tuple[CollectionSpec, str, tuple[str, ...]]]] = {}
        for dataset in prepared.values():
            if dataset.path is None:
                continue
            plans = []
            for collection in config.collections:
                if dataset.species not in collection.sources:
                    notes.append(f"collection {collection.name} has no {dataset.species} gene sets: "
                                 f"not scored on {dataset.name}")
                    continue
                spec = resolve_gene_set_spec(collection.sources[dataset.species], config.root)
                metrics = []
                for metric in collection.metrics:  # names already resolved by the metric registry
                    note = METRICS[canonical_metric(metric)].unavailable()
                    if note is None:
                        metrics.append(metric)
                    elif note not in notes:
                        notes.append(note)
                metrics = tuple(metrics)
                record = collections.setdefault(collection.name, {})
                if dataset.species not in record:
                    gs = _gene_sets(spec, dataset.species, collection.min_size, collection.max_size)
                    record[dataset.species] = {**gs.config(), "spec": collection.sources[dataset.species]}
                plans.append((collection, spec, metrics))
            score_plans[dataset.name] = plans

        tasks: list[CellTask] = []
        skipped: list[CellOutcome] = []
        entries = {m.name: registry.get(m.name) for m in config.models}
        for dataset in prepared.values():
            for model in config.models:
                entry = entries[model.name]
                for seed in config.seeds:
                    if dataset.skip_reason and not (entry.input == "embedding" and dataset.path):
                        skipped.append(CellOutcome(dataset.name, model.name, seed, "skipped",
                                                   reason=f"dataset: {dataset.skip_reason}"))
                        continue
                    if entry.input == "counts" and dataset.values != "counts" and model.layer is None:
                        # known before training (and so also in a cache-only run): nothing to train on
                        skipped.append(CellOutcome(dataset.name, model.name, seed, "skipped",
                                                   reason=_no_counts_reason(dataset, model.name)))
                        continue
                    missing = entry.missing()
                    if missing:
                        hint = f'pip install "topiceval[{entry.extra}]"' if entry.extra else "install them"
                        skipped.append(CellOutcome(dataset.name, model.name, seed, "skipped",
                                                   reason=f"model needs {', '.join(missing)}: {hint}"))
                        continue
                    key = train_key(dataset, model, seed, entry)
                    scores = []
                    for collection, spec, metrics in score_plans[dataset.name]:
                        if entry.kind == "embedding":  # a cell embedding alone: clustering metrics only
                            metrics = tuple(m for m in metrics if set(METRICS[m].needs) <= {"cells", "labels"})
                            if not metrics:
                                continue
                        uses_sets = any("gene_sets" in METRICS[m].needs for m in metrics)
                        identity = _gene_set_identity(spec, dataset.species, collection.min_size, collection.max_size,
                                                      dataset.path if uses_sets and dataset.n_genes else None)
                        score_key = stable_hash({"run": key, "gene_sets": identity, "metrics": list(metrics),
                                                 "evaluation": evaluation})
                        scores.append(ScoreTask(collection.name, spec, dataset.species, tuple(metrics),
                                                collection.min_size, collection.max_size, score_key))
                    if refresh:
                        shutil.rmtree(cache_root / "runs" / key, ignore_errors=True)
                        _remove_checkpoint(cache_root / CHECKPOINT_DIR / key)  # start over
                        for s in scores:
                            shutil.rmtree(cache_root / "scores" / s.key, ignore_errors=True)
                    tasks.append(CellTask(dataset, model, entry, seed, key,
                                          stable_hash(train_settings(dataset, model, seed)), tuple(scores),
                                          evaluation, str(cache_root), config.threads_per_cell))
        # Largest first, so that parallel workers finish together; with order = "model", model by
        # model (in the config's order), each model's cells largest first.
        position = {m.name: i for i, m in enumerate(config.models)}
        if config.order == "model":
            tasks.sort(key=lambda t: (position[t.model.name], -(t.dataset.n_cells * t.dataset.n_genes)))
        else:
            tasks.sort(key=lambda t: -(t.dataset.n_cells * t.dataset.n_genes))
        for o in skipped:
            logger.info("skip %s / %s / seed %d: %s", o.dataset, o.model, o.seed, o.reason)

        outcomes: list[CellOutcome] = list(skipped)
        every_task = list(tasks)
        if published is not None:
            _check_published(published, config, collections)
            tasks, carried = _carry_published(tasks, published, cache_root)
            outcomes += carried
            logger.info("%d cell(s) carried over from the published report (not in the cache)", len(carried))
        if cached_only:
            tasks, missing = _split_cached(tasks, cache_root)
            outcomes += missing
            for o in missing:
                logger.info("missing %s / %s / seed %d: %s", o.dataset, o.model, o.seed, o.reason)
        ledger = None
        if not cached_only:  # this part's start, cells and end, in the cache (the run may be killed)
            ledger = history.Ledger(cache_root, config.name)
            ledger.start(config_sha256=config.sha256(), backend=backend, n_jobs=n_jobs, cells=len(tasks),
                         cached=len(_split_cached(tasks, cache_root)[0]))
        bar = tqdm(total=len(tasks), desc="cells", unit="cell", disable=not progress)
        try:
            with ledger.heartbeat() if ledger is not None else contextlib.nullcontext():
                for outcome in (_sequential(tasks, 1, None) if cached_only  # reads files only
                                else _BACKENDS[backend](tasks, n_jobs, config.scheduler)):
                    outcomes.append(outcome)
                    _log_outcome(outcome)
                    if ledger is not None:
                        ledger.cell(dataset=outcome.dataset, model=outcome.model, seed=outcome.seed,
                                    status=outcome.status, trained=outcome.trained, wall_s=outcome.wall_s)
                    bar.set_postfix_str(f"{outcome.dataset}/{outcome.model}/{outcome.seed} {outcome.status}")
                    bar.update(1)
        finally:
            bar.close()
        wall = time.perf_counter() - wall0
        if ledger is not None:
            ledger.end(wall_s=wall)
        done = sum(o.status == "done" for o in outcomes)
        logger.info("finished: %d done, %d skipped, %d failed%s in %.1f s wall", done,
                    sum(o.status == "skipped" for o in outcomes), sum(o.status == "failed" for o in outcomes),
                    f", {sum(o.status == MISSING for o in outcomes)} missing (not in the cache)" if cached_only else "",
                    wall)
        record = {
            **config.to_dict(),
            "datasets_prepared": [p.to_dict() | {"path": None} for p in prepared.values()],
            "gene_sets": collections,
            "notes_run": notes,
            "started": started_at,
            "wall_s": wall,
            "cpu_s_main": time.process_time() - cpu0,
            "cpu_s_cells": float(sum(o.cpu_s for o in outcomes)),
            "backend_used": "cache only" if cached_only else backend,
            "n_jobs_used": n_jobs,
            "cached_only": cached_only,
            "clustering_only": [m.name for m in config.models if entries[m.name].kind == "embedding"],
            # what ran for each model: the registry's description and its libraries' versions
            "implementations": {m.name: {"description": entries[m.name].description, "kind": entries[m.name].kind,
                                         "versions": _library_versions(entries[m.name])} for m in config.models},
            "versions": _versions(),
            # every part this leaderboard ran in (this one included), from the cache's ledger
            # (with a published report's parts: they ran on the machine that published it)
            "history": history.merge_parts((published.config.get("history") or []) if published is not None else [],
                                           history.read_parts(history.history_file(cache_root, config.name))),
        }
        carried_cells = {(o.dataset, o.model, o.seed) for o in outcomes if o.source == PUBLISHED}
        ran = {id(t) for t in tasks}
        # the cells' order: the tasks that ran (or were read), the carried ones in their place
        ordered = [t for t in every_task if id(t) in ran or (t.dataset.name, t.model.name, t.seed) in carried_cells]
        return _collect(record, ordered, outcomes, prepared, cache_root, published)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()


def _split_cached(tasks: Sequence[CellTask], cache: Path) -> tuple[list[CellTask], list[CellOutcome]]:
    """The cells whose run and every score are cached, and a ``"missing"`` outcome for each other
    one, saying what it lacks (see ``cached_only`` of :func:`run`)."""
    from topiceval.adapters.registry import CONFIG_FILE

    ready, missing = [], []
    for task in tasks:
        if task.entry.input == "embedding":  # trains nothing (reads a stored embedding): always collected
            ready.append(task)
            continue
        if not (cache / "runs" / task.train_key / CONFIG_FILE).is_file():
            reason = "not in the cache: not trained yet (being trained, or failed when tried: failed cells are not cached)"
        else:
            lacking = [s.collection for s in task.scores
                       if not (cache / "scores" / s.key / "evaluation.json").is_file()]
            if not lacking:
                ready.append(task)
                continue
            reason = f"not in the cache: trained, not yet scored on {', '.join(lacking)}"
        missing.append(CellOutcome(task.dataset.name, task.model.name, task.seed, MISSING, reason=reason,
                                   train_key=task.train_key, settings_key=task.settings_key))
    return ready, missing


def _log_outcome(o: CellOutcome) -> None:
    where = f"{o.dataset} / {o.model} / seed {o.seed}"
    if o.status == "done":
        computed = [c for c, fresh in o.scored.items() if fresh and c in o.score_s]
        logger.info("%s: done (%s, train %.1f s, scored %s; %.1f s wall, %.1f s CPU)", where,
                    "trained" if o.trained else "cached run", o.train_s,
                    ", ".join(f"{c} {o.score_s[c]:.1f} s" for c in computed) or "from cache", o.wall_s, o.cpu_s)
    elif o.status == "skipped":
        logger.info("%s: skipped: %s", where, o.reason)
    else:
        logger.error("%s: FAILED: %s\n%s", where, o.reason, o.error)
    for text in o.warnings:
        logger.warning("%s: %s", where, text)
