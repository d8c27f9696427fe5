"""The leaderboard configuration: a TOML file (read with :mod:`tomllib`) or a dict.

A run is ``datasets x models x seeds``, each trained model scored against every gene-set
collection. Example (``reports/leaderboard/leaderboard.toml`` is the project's own)::

    name = "my leaderboard"
    seeds = [0, 1, 2]
    datasets = ["pollen", "ting", { name = "mine", path = "mine.h5ad", label_key = "cell_type",
                                     species = "human", values = "counts" }]
    notes = "free text shown in the report"

    [preprocess]
    n_top_genes = 5000          # count datasets: the paper's preprocessing (topiceval.datasets.preprocess)

    [train]
    models = "registered"       # every registered topic model (missing extras are reported as skipped), or a
                                # list, which may name clustering-only models (scvi, scgpt: ARI / NMI alone)
    n_topics = 20               # defaults for every model; each model's own default where absent
    epochs = 100

    [models.sce2tm]             # per-model settings: n_topics, epochs, layer, embedding_key, options
    epochs = 500
    options = { progress = false }

    [[collections]]             # gene sets, one spec per species (shipped name, msigdb:..., a GMT path,
    name = "c2"                 # relative to this file, or shared:PATH inside the shared data folder)
    human = "shared:gene_sets/c2.all.v7.1.symbols.gmt"
    mouse = "shared:gene_sets/mouse.c2.all.v7.1.symbols.gmt"
    metrics = ["tc", "td", "tq", "ip", "ora", "gsea", "clustering"]
    # a list of specs is one collection, their union: human = ["shared:A.gmt", "shared:B.gmt"]

    [evaluation]                # any topiceval.evaluate option (the README's options table)
    gsea_n_perm = 1000

    [run]
    backend = "joblib"          # "joblib" (processes), "dask" (dask.distributed) or "sequential"
    n_jobs = 2
    threads_per_cell = 1
    order = "size"              # cells largest dataset first; "model": model by model, in train.models order

    [output]
    dir = "."                   # report folder, relative to this file
    rank_by = ["TQ", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI"]

Every field that changes a number enters :meth:`LeaderboardConfig.sha256`; the run settings
(backend, jobs, folders) do not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topiceval._utils import PathLike, as_path
from topiceval.errors import InputError
from topiceval.metrics.registry import METRICS, canonical_metric, rank_keys

__all__ = [
    "BACKENDS",
    "ORDERS",
    "RANK_BY",
    "CollectionSpec",
    "DatasetSpec",
    "LeaderboardConfig",
    "ModelSpec",
    "load_config",
    "stable_hash",
]

#: Parallel backends of :func:`topiceval.leaderboard.run`.
BACKENDS = ("joblib", "dask", "sequential")
#: Orders the cells run in: largest dataset first (workers finish together), or model by model in
#: the order of ``train.models`` (each model's cells, largest dataset first, before the next
#: model's: a long run in parts completes whole model rows early).
ORDERS = ("size", "model")
#: Default ranking metrics: the three combined quality scores, purity and clustering (higher is
#: better), as the metric registry declares them (``MetricFamily.rank_by``).
RANK_BY = rank_keys()
SPECIES = ("human", "mouse")
#: Names of the dataset shipped in the package (:func:`topiceval.datasets.load_default`).
DEFAULT_NAMES = ("default", "pollen_hvg5000")
VALUES = ("counts", "log_expression", "none")

_TOP_KEYS = {"name", "description", "notes", "seeds", "datasets", "preprocess", "train", "models",
             "collections", "evaluation", "run", "output"}
_MODEL_KEYS = {"n_topics", "epochs", "layer", "embedding_key", "options"}


def stable_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys; numpy values and paths converted)."""
    from topiceval.io import _json_safe

    return hashlib.sha256(json.dumps(_json_safe(obj), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the leaderboard.

    Attributes
    ----------
    name
        A :data:`topiceval.datasets.DATASETS` name, ``"pollen_hvg5000"`` or ``"default"`` (the
        shipped dataset, :func:`topiceval.datasets.load_default`), or any name when ``path`` is
        given.
    path
        An expression file :func:`topiceval.datasets.read` reads (then ``label_key``, ``species``
        and ``values`` describe it).
    label_key
        ``obs`` column of the cell types.
    species
        ``"human"`` or ``"mouse"``: picks each collection's gene sets.
    values
        ``"counts"`` (preprocessed before training), ``"log_expression"`` (used as is) or
        ``"none"`` (no expression matrix: every model is skipped).
    """

    name: str
    path: str | None = None
    label_key: str | None = None
    species: str | None = None
    values: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """Training settings of one registered model (``None``: the model's own default)."""

    name: str
    n_topics: int | None = None
    epochs: int | None = None
    layer: str | None = None
    embedding_key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["options"] = dict(sorted(dict(self.options).items()))
        return out


@dataclass(frozen=True)
class CollectionSpec:
    """A gene-set collection, given once per species, and the metrics scored against it.

    Attributes
    ----------
    name
        Short name used in tables (``"c2"``).
    sources
        ``{species: spec}``: a shipped collection name, ``msigdb:NAME@RELEASE``, a GMT path
        (resolved against the config file's folder) or ``shared:PATH`` (inside the shared data
        folder, :func:`topiceval.datasets.shared_data_dir`); or a tuple of such specs, scored as
        one collection, their union (:func:`topiceval.gene_sets.combine`).
    metrics
        Metric family names for :func:`topiceval.evaluate`, resolved by the metric registry
        (``"ari"`` / ``"nmi"`` become ``"clustering"``); a family whose optional dependency is
        missing (clustering without python-igraph) is left out with a note in the results.
    min_size, max_size
        Set-size filters applied when loading (:func:`topiceval.gene_sets.load`).
    """

    name: str
    sources: Mapping[str, str | tuple[str, ...]]
    metrics: tuple[str, ...] = ("tc", "td", "tq", "ip")
    min_size: int | None = None
    max_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["sources"] = dict(sorted(dict(self.sources).items()))
        out["metrics"] = list(self.metrics)
        return out


@dataclass(frozen=True)
class LeaderboardConfig:
    """A parsed and validated leaderboard configuration (see the module docstring).

    Attributes
    ----------
    name, description, notes
        Shown in the report.
    seeds
        Training seeds; every (dataset, model) is trained once per seed.
    datasets, models, collections
        What is run. ``models`` is already expanded (``"registered"`` becomes every registered
        model, in name order).
    n_top_genes
        Highly variable genes kept by the preprocessing of count datasets (``None``: all genes).
    evaluation
        Keyword options of :func:`topiceval.evaluate` (validated by
        :class:`topiceval.EvaluationOptions`).
    backend, n_jobs, threads_per_cell, scheduler, order
        How the cells run (not hashed: they change no number); ``order`` is one of :data:`ORDERS`.
    root
        Folder that relative paths are resolved against (the TOML file's folder).
    out, cache
        Report folder and cache folder (``None``: the defaults of :func:`topiceval.leaderboard.run`).
    rank_by
        Metrics averaged (as ranks) to order the models.
    source
        The TOML file, if any.
    """

    name: str = "topiceval leaderboard"
    description: str = ""
    notes: str = ""
    seeds: tuple[int, ...] = (0,)
    datasets: tuple[DatasetSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    collections: tuple[CollectionSpec, ...] = ()
    n_top_genes: int | None = 5000
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    backend: str = "joblib"
    n_jobs: int = 1
    threads_per_cell: int = 1
    scheduler: str | None = None
    order: str = "size"
    root: Path = field(default_factory=Path.cwd)
    out: Path | None = None
    cache: Path | None = None
    rank_by: tuple[str, ...] = RANK_BY
    source: Path | None = None

    def numbers(self) -> dict[str, Any]:
        """Everything that changes a number (what :meth:`sha256` hashes)."""
        return {
            "seeds": list(self.seeds),
            "datasets": [d.to_dict() for d in self.datasets],
            "models": [m.to_dict() for m in self.models],
            "collections": [c.to_dict() for c in self.collections],
            "n_top_genes": self.n_top_genes,
            "evaluation": dict(sorted(dict(self.evaluation).items())),
        }

    def sha256(self) -> str:
        """Hash of :meth:`numbers`."""
        return stable_hash(self.numbers())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of the whole configuration (recorded in ``results.json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "notes": self.notes,
            **self.numbers(),
            "run": {"backend": self.backend, "n_jobs": self.n_jobs,
                    "threads_per_cell": self.threads_per_cell, "scheduler": self.scheduler,
                    "order": self.order},
            "rank_by": list(self.rank_by),
            "source": None if self.source is None else str(self.source),
            "config_sha256": self.sha256(),
        }

    def model(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def replace(self, **changes: Any) -> LeaderboardConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InputError("config: seeds is empty")
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise InputError(f"config: seeds must be non-negative integers, got {seed!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"config: duplicate seeds in {list(self.seeds)}")
        for what, items in (("datasets", self.datasets), ("models", self.models),
                            ("collections", self.collections)):
            names = [item.name for item in items]
            if len(set(names)) != len(names):
                raise InputError(f"config: duplicate {what} names in {names}")
        if not self.datasets:
            raise InputError("config: no datasets")
        if not self.models:
            raise InputError("config: no models")
        if not self.collections:
            raise InputError("config: no gene-set collections")
        if self.backend not in BACKENDS:
            raise InputError(f"config: run.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.order not in ORDERS:
            raise InputError(f"config: run.order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        for name in ("n_jobs", "threads_per_cell"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"config: run.{name} must be a positive integer, got {value!r}")
        if self.n_top_genes is not None and (isinstance(self.n_top_genes, bool)
                                             or not isinstance(self.n_top_genes, int) or self.n_top_genes < 2):
            raise InputError(f"config: preprocess.n_top_genes must be an integer >= 2 or absent, got {self.n_top_genes!r}")
        from topiceval.evaluate import EvaluationOptions

        EvaluationOptions.from_kwargs(_evaluation_kwargs(self.evaluation))
        if not self.rank_by:
            raise InputError("config: output.rank_by is empty")


def _evaluation_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(options)
    if "cluster_resolutions" in out and out["cluster_resolutions"] is not None:
        out["cluster_resolutions"] = tuple(float(r) for r in out["cluster_resolutions"])
    return out


# --------------------------------------------------------------------------- parsing
def load_config(source: PathLike | Mapping[str, Any], *, root: PathLike | None = None) -> LeaderboardConfig:
    """Read a leaderboard configuration.

    Parameters
    ----------
    source
        A TOML file, or the same content as a dict.
    root
        Folder that relative paths resolve against (default: the TOML file's folder, or the
        working directory for a dict).

    Returns
    -------
    LeaderboardConfig

    Raises
    ------
    InputError
        A missing or malformed file, unknown keys (the message lists the valid ones), unknown
        models or datasets, bad values.
    """
    path = None
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        path = as_path(source)
        if not path.is_file():
            raise InputError(f"config file not found: {path}")
        raw = _read_toml(path)
    base = as_path(root) if root is not None else (path.parent if path is not None else Path.cwd())
    base = base.resolve()
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise InputError(f"config: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_TOP_KEYS))}")

    preprocess = _table(raw, "preprocess", {"n_top_genes"})
    train = _table(raw, "train", {"models"} | _MODEL_KEYS)
    run = _table(raw, "run", {"backend", "n_jobs", "threads_per_cell", "scheduler", "order"})
    output = _table(raw, "output", {"dir", "cache", "rank_by"})
    evaluation = _table(raw, "evaluation", None)

    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    datasets = tuple(_dataset(item) for item in _list(raw.get("datasets", []), "datasets"))
    models = _models(train, raw.get("models", {}))
    collections = tuple(_collection(item) for item in _list(raw.get("collections", []), "collections"))

    def folder(value: Any, key: str) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InputError(f"config: output.{key} must be a path string, got {value!r}")
        candidate = as_path(value)
        return candidate if candidate.is_absolute() else (base / candidate)

    return LeaderboardConfig(
        name=str(raw.get("name", "topiceval leaderboard")),
        description=str(raw.get("description", "")),
        notes=str(raw.get("notes", "")),
        seeds=tuple(seeds),
        datasets=datasets,
        models=models,
        collections=collections,
        n_top_genes=preprocess.get("n_top_genes", 5000),
        evaluation=_evaluation_kwargs(evaluation),
        backend=run.get("backend", "joblib"),
        n_jobs=run.get("n_jobs", 1),
        threads_per_cell=run.get("threads_per_cell", 1),
        scheduler=run.get("scheduler"),
        order=run.get("order", "size"),
        root=base,
        out=folder(output.get("dir"), "dir"),
        cache=folder(output.get("cache"), "cache"),
        rank_by=tuple(output.get("rank_by", RANK_BY)),
        source=None if path is None else path.resolve(),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise InputError('reading a TOML config on Python 3.10 needs tomli: pip install "topiceval[leaderboard]"') from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config {path} is not valid TOML: {exc}") from None


def _table(raw: Mapping[str, Any], key: str, valid: set[str] | None) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"config: [{key}] must be a table, got {value!r}")
    if valid is not None:
        unknown = sorted(set(value) - valid)
        if unknown:
            raise InputError(f"config: unknown key(s) in [{key}]: {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return dict(value)


def _list(value: Any, key: str) -> list[Any]:
    if isinstance(value, str | Mapping):
        return [value]
    if not isinstance(value, Sequence):
        raise InputError(f"config: {key} must be a list, got {value!r}")
    return list(value)


def _dataset(item: Any) -> DatasetSpec:
    from topiceval.datasets import DATASETS

    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or "name" not in item:
        raise InputError(f"config: a dataset is a registry name or a table with a name, got {item!r}")
    unknown = sorted(set(item) - {"name", "path", "label_key", "species", "values"})
    if unknown:
        raise InputError(f"config: unknown dataset key(s) {', '.join(unknown)}")
    spec = DatasetSpec(**{k: (None if v is None else str(v)) for k, v in item.items()})
    if spec.path is None and spec.name not in DATASETS and spec.name not in DEFAULT_NAMES:
        raise InputError(f"config: unknown dataset {spec.name!r}; registered: {', '.join(DATASETS)}, "
                         f"{DEFAULT_NAMES[1]} (the shipped one, also called default), or give a path")
    if spec.species is not None and spec.species not in SPECIES:
        raise InputError(f"config: dataset {spec.name!r}: species must be one of {', '.join(SPECIES)}, got {spec.species!r}")
    if spec.values is not None and spec.values not in VALUES:
        raise InputError(f"config: dataset {spec.name!r}: values must be one of {', '.join(VALUES)}, got {spec.values!r}")
    if spec.path is not None and (spec.species is None or spec.label_key is None):
        raise InputError(f"config: dataset {spec.name!r} given by path needs label_key and species")
    return spec


def _model_spec(name: str, settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> ModelSpec:
    if not isinstance(settings, Mapping):
        raise InputError(f"config: [models.{name}] must be a table, got {settings!r}")
    unknown = sorted(set(settings) - _MODEL_KEYS)
    if unknown:
        raise InputError(f"config: unknown key(s) in [models.{name}]: {', '.join(unknown)}; valid: {', '.join(sorted(_MODEL_KEYS))}")
    merged = {**{k: v for k, v in defaults.items() if k in _MODEL_KEYS}, **settings}
    options = {**dict(defaults.get("options", {})), **dict(settings.get("options", {}))}
    for key in ("n_topics", "epochs"):
        value = merged.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"config: {name}.{key} must be a positive integer, got {value!r}")
    return ModelSpec(name=name, n_topics=merged.get("n_topics"), epochs=merged.get("epochs"),
                     layer=merged.get("layer"), embedding_key=merged.get("embedding_key"), options=options)


def _models(train: Mapping[str, Any], settings: Any) -> tuple[ModelSpec, ...]:
    from topiceval.adapters import registry

    if not isinstance(settings, Mapping):
        raise InputError(f"config: [models] must be a table of per-model tables, got {settings!r}")
    selection = train.get("models", "registered")
    if selection == "registered":  # the topic models; clustering-only rows (scvi, scgpt) are named
        names = [entry.name for entry in registry.available() if entry.kind == "topic"]
    elif isinstance(selection, str):
        names = [part.strip() for part in selection.split(",") if part.strip()]
    else:
        names = [str(name) for name in _list(selection, "train.models")]
    for name in [*names, *settings]:
        registry.get(name)  # unknown names fail with the list of registered ones
    for name in settings:
        if name not in names:
            raise InputError(f"config: [models.{name}] is set but {name!r} is not in train.models {names}")
    return tuple(_model_spec(registry.get(name).name, settings.get(name, {}), train) for name in names)


def _collection(item: Any) -> CollectionSpec:
    if not isinstance(item, Mapping) or "name" not in item:
        raise InputError(f"config: a collection is a table with name, human and/or mouse, got {item!r}")
    unknown = sorted(set(item) - {"name", "human", "mouse", "metrics", "min_size", "max_size"})
    if unknown:
        raise InputError(f"config: unknown key(s) in collection {item.get('name')!r}: {', '.join(unknown)}")
    sources = {}
    for species in SPECIES:
        if species not in item:
            continue
        value = item[species]
        if isinstance(value, list | tuple):  # several files scored as one corpus (their union)
            if not value or not all(isinstance(v, str) and v for v in value):
                raise InputError(f"config: collection {item['name']!r}: {species} must be a gene-set spec or a "
                                 f"non-empty list of specs, got {value!r}")
            sources[species] = value[0] if len(value) == 1 else tuple(value)
        else:
            sources[species] = str(value)
    if not sources:
        raise InputError(f"config: collection {item['name']!r} names no gene sets (human = ..., mouse = ...)")
    metrics = item.get("metrics", ["tc", "td", "tq", "ip"])
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = [str(m).strip().lower() for m in metrics]
    if metrics == ["all"]:
        metrics = list(METRICS)
    try:  # unknown names fail here, with the valid ones; aliases resolve as in evaluate()
        metrics = list(dict.fromkeys(canonical_metric(m) for m in metrics))
    except InputError as exc:
        raise InputError(f"config: collection {item['name']!r}: {exc}") from None
    if not metrics:
        raise InputError(f"config: collection {item['name']!r} asks for no metric")
    return CollectionSpec(name=str(item["name"]), sources=sources, metrics=tuple(metrics),
                          min_size=item.get("min_size"), max_size=item.get("max_size"))


def resolve_gene_set_spec(spec: str | Sequence[str], root: Path) -> str | tuple[str, ...]:
    """A collection spec with ``shared:`` and relative GMT paths made absolute (each part of a
    list of specs, which :func:`topiceval.gene_sets.load` reads as their union)."""
    from topiceval.gene_sets import SHIPPED

    if not isinstance(spec, str):
        return tuple(str(resolve_gene_set_spec(part, root)) for part in spec)
    if spec.startswith("shared:"):
        from topiceval.datasets import shared_data_dir

        return str(shared_data_dir() / spec[len("shared:"):])
    if spec in SHIPPED or spec.startswith("msigdb:"):
        return spec
    candidate = as_path(spec)
    return str(candidate if candidate.is_absolute() else (root / candidate))


def default_cache_dir() -> Path:
    """``$TOPICEVAL_CACHE/leaderboard`` or the user cache folder's ``leaderboard``."""
    from topiceval.gene_sets.download import cache_dir

    return cache_dir() / "leaderboard"
