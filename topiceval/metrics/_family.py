"""How a metric family declares itself: its options dataclass and a :class:`MetricFamily` record.

Each family module (``coherence.py``, ``ora.py``, ...) declares, next to its metric function,

* one frozen options dataclass deriving from :class:`Options`, whose fields are declared with
  :func:`option` (default, one-line doc, allowed values, kind); the dataclass validates itself,
  and this is the only place the option is checked;
* one :class:`MetricFamily`: the request name, the score keys, the inputs it needs, its options
  class and ``compute(inputs, options) -> MetricResult``.

:mod:`topiceval.metrics.registry` lists the families; ``evaluate()``, the ``topiceval score``
parser, the leaderboard's TOML validation and the report's columns all read from it.

Option names are global (``ora_alpha``, ``gsea_n_perm``): the field name is the keyword of
``evaluate()``, the TOML ``[evaluation]`` key and, with ``-`` for ``_``, the command-line flag.
Options shared by several families (``top_n``, ``seed``, ``n_jobs``) are declared once, in the
small dataclasses of this module, and inherited by the families that read them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from topiceval.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from topiceval.gene_sets import GeneSets
    from topiceval.metrics._result import MetricResult

__all__ = [
    "KINDS",
    "BootstrapOption",
    "MetricFamily",
    "NJobsOption",
    "OptionSpec",
    "Options",
    "ScoringInput",
    "SeedOption",
    "TopNOption",
    "option",
    "option_specs",
]

#: How an option's value is checked (and parsed on the command line):
#: ``int`` (``low`` bound), ``int_or_none``, ``fraction`` (a number in (0, 1]), ``choice`` (one of
#: ``choices``), ``bool_or_none`` (True, False or None: ``yes`` / ``no`` / ``auto`` on the command
#: line), ``custom`` (the family's ``_check`` validates; ``parse`` reads the command-line text).
KINDS = ("int", "int_or_none", "fraction", "choice", "bool_or_none", "custom")


def option(
    default: Any,
    doc: str,
    *,
    kind: str,
    choices: Sequence[Any] | None = None,
    low: int | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    aliases: Sequence[str] = (),
    runtime: bool = False,
    hashed_at_default: bool = True,
) -> Any:
    """Declare an option as a dataclass field.

    Parameters
    ----------
    default
        The default value (the API's, the CLI's and the TOML's).
    doc
        One line: what it does and what the paper / reference uses.
    kind
        One of :data:`KINDS`.
    choices
        Allowed values for ``kind="choice"``.
    low
        Smallest allowed value for ``int`` / ``int_or_none``.
    parse
        Command-line text to value (default: from ``kind``).
    metavar
        Command-line placeholder.
    aliases
        Old command-line spellings (``--alpha``), accepted with a deprecation warning.
    runtime
        The option changes no number (threads, devices): recorded under ``config["runtime"]`` and
        left out of ``config_sha256``.
    hashed_at_default
        ``False`` for an option added after results were published: at its default it stays out of
        ``config_sha256``, so existing baselines still compare.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    return field(default=default, metadata={
        "doc": doc, "kind": kind, "choices": None if choices is None else tuple(choices), "low": low,
        "parse": parse, "metavar": metavar, "aliases": tuple(aliases), "runtime": runtime,
        "hashed_at_default": hashed_at_default,
    })


@dataclass(frozen=True)
class OptionSpec:
    """One declared option, as :func:`option_specs` lists it."""

    name: str
    default: Any
    doc: str
    kind: str
    choices: tuple[Any, ...] | None
    low: int | None
    parse: Callable[[str], Any] | None
    metavar: str | None
    aliases: tuple[str, ...]
    runtime: bool
    hashed_at_default: bool
    owner: type

    @property
    def flag(self) -> str:
        """The command-line flag, ``--`` and the name with ``-`` for ``_``."""
        return "--" + self.name.replace("_", "-")


def option_specs(cls: type) -> list[OptionSpec]:
    """The :class:`OptionSpec` of every field of an options dataclass, in field order."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        owner = next(base for base in reversed(cls.__mro__)
                     if dataclasses.is_dataclass(base) and f.name in getattr(base, "__annotations__", {}))
        out.append(OptionSpec(f.name, f.default, meta["doc"], meta["kind"], meta["choices"], meta["low"],
                              meta["parse"], meta["metavar"], meta["aliases"], meta["runtime"],
                              meta["hashed_at_default"], owner))
    return out


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def _check_value(spec: OptionSpec, value: Any) -> Any:
    """Validate one value against its declaration; returns it (numpy scalars made plain)."""
    name, kind = spec.name, spec.kind
    if kind in ("int", "int_or_none"):
        if value is None and kind == "int_or_none":
            return None
        if not _is_int(value):
            raise InputError(f"{name} must be an integer{' or None' if kind == 'int_or_none' else ''}, got {value!r}")
        if spec.low is not None and value < spec.low:
            raise InputError(f"{name} must be at least {spec.low}, got {value!r}")
        return int(value)
    if kind == "fraction":
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
                or not 0 < value <= 1:
            raise InputError(f"{name} must be a number in (0, 1], got {value!r}")
        return float(value) if isinstance(value, np.floating) else value
    if kind == "choice":
        if isinstance(value, bool) or value not in spec.choices:
            raise InputError(f"{name} must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
        return value
    if kind == "bool_or_none":
        if value not in (None, True, False) or not (value is None or isinstance(value, bool | np.bool_)):
            raise InputError(f"{name} must be True, False or None, got {value!r}")
        return None if value is None else bool(value)
    return value  # custom: the family's _check


@dataclass(frozen=True)
class Options:
    """Base of every family's options dataclass: validates each field from its declaration.

    A subclass may define ``_check(self)`` for what one field's declaration cannot say (bounds
    between two fields, normalising a value with ``object.__setattr__``); it runs first.
    """

    def __post_init__(self) -> None:
        self._check()
        for spec in option_specs(type(self)):
            checked = _check_value(spec, getattr(self, spec.name))
            object.__setattr__(self, spec.name, checked)

    def _check(self) -> None:
        """Cross-field checks of a family (none by default)."""

    @classmethod
    def specs(cls) -> list[OptionSpec]:
        """The declared options of this dataclass."""
        return option_specs(cls)

    @classmethod
    def take(cls, values: Mapping[str, Any]) -> Options:
        """An instance from the entries of ``values`` that name this class's fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


# --------------------------------------------------------------------------- shared options
@dataclass(frozen=True)
class TopNOption(Options):
    """``top_n``: top genes per topic (TC, TD, ORA and the per-topic table)."""

    top_n: int = option(10, "top genes per topic for TC, TD, ORA and the per-topic table (paper: 10)",
                        kind="int", low=2)


@dataclass(frozen=True)
class SeedOption(Options):
    """``seed``: the seed of every stochastic step."""

    seed: int = option(0, "seed of every stochastic step (GSEA permutations, clustering); same seed, "
                          "same numbers", kind="int", low=0)


@dataclass(frozen=True)
class NJobsOption(Options):
    """``n_jobs``: threads; changes no number."""

    n_jobs: int = option(1, "threads for GSEA (-1: all cores); changes no number", kind="custom",
                         parse=int, runtime=True)

    def _check(self) -> None:
        if not _is_int(self.n_jobs) or self.n_jobs == 0:
            raise InputError(f"n_jobs must be a non-zero integer (-1: all cores), got {self.n_jobs!r}")


@dataclass(frozen=True)
class BootstrapOption(SeedOption):
    """``n_boot``, ``ci_level``: bootstrap intervals over cells (IP, ARI, NMI), seeded by ``seed``.

    Added after 0.1: at their defaults they stay out of ``config_sha256``.
    """

    n_boot: int = option(0, "bootstrap resamples of the cells for confidence intervals of IP, ARI and NMI "
                            "(seeded by seed; 0: no intervals, else at least 10)", kind="custom", parse=int,
                         metavar="N", hashed_at_default=False)
    ci_level: float = option(0.95, "confidence level of the bootstrap intervals, in (0, 1)", kind="custom",
                             parse=float, hashed_at_default=False)

    def _check(self) -> None:
        super()._check()
        if not _is_int(self.n_boot) or not (self.n_boot == 0 or self.n_boot >= 10):
            raise InputError(f"n_boot must be 0 (no intervals) or an integer of at least 10, got {self.n_boot!r}")
        c = self.ci_level
        if isinstance(c, bool) or not isinstance(c, int | float | np.integer | np.floating) or not 0 < c < 1:
            raise InputError(f"ci_level must be a number in (0, 1), got {c!r}")

    def interval(self, statistic: Callable[..., float], *data: np.ndarray) -> dict[str, Any] | None:
        """The bootstrap interval of ``statistic(*data)`` as recorded in a score's info, or ``None``
        when ``n_boot`` is 0 (:func:`topiceval.stats.bootstrap_ci`)."""
        if not self.n_boot:
            return None
        from topiceval.stats import bootstrap_ci

        low, high = bootstrap_ci(statistic, data, n_boot=self.n_boot, level=self.ci_level, seed=self.seed)
        return {"low": low, "high": high, "level": self.ci_level, "n_boot": self.n_boot,
                "method": "percentile bootstrap over cells (scipy.stats.bootstrap)"}


# --------------------------------------------------------------------------- inputs and families
#: What a family may need, and how a missing one is described.
NEEDS: dict[str, str] = {
    "topic_gene": "a topic-gene matrix",
    "gene_sets": "gene sets (gene_sets=...)",
    "labels": "cell labels (labels=...)",
    "cell_topic": "a cell-topic matrix",
    "cells": "a cell-topic matrix or a cell embedding",
}


@dataclass
class ScoringInput:
    """Everything a family's ``compute`` may read (validated by ``evaluate()``).

    Attributes
    ----------
    topic_gene, gene_names
        ``(n_topics, n_genes)`` weights and their symbols, or ``None`` (embedding-only scoring).
    cell_topic, cell_embedding
        ``(n_cells, n_topics)`` and ``(n_cells, n_dims)``, or ``None``.
    labels
        ``n_cells`` labels (``None`` for an unlabelled cell), or ``None``.
    gene_sets
        The loaded collection, or ``None``.
    results
        Results of the families that ran before, by score key (TQ reads TC and TD).
    """

    topic_gene: np.ndarray | None
    gene_names: np.ndarray | None
    cell_topic: np.ndarray | None = None
    cell_embedding: np.ndarray | None = None
    labels: np.ndarray | None = None
    gene_sets: GeneSets | None = None
    results: dict[str, MetricResult] = field(default_factory=dict)
    _top: dict[int, np.ndarray] = field(default_factory=dict)

    def top_genes(self, top_n: int) -> np.ndarray:
        """:func:`~topiceval.metrics.top_gene_indices` of the topic-gene matrix, computed once."""
        from topiceval.metrics.topgenes import top_gene_indices

        if top_n not in self._top:
            self._top[top_n] = top_gene_indices(self.topic_gene, top_n)
        return self._top[top_n]

    @property
    def cells(self) -> tuple[str, np.ndarray]:
        """The cell representation for clustering: the embedding when given (the authors cluster
        the encoder mean), else the cell-topic matrix; with its name."""
        if self.cell_embedding is not None:
            return "cell_embedding", self.cell_embedding
        return "cell_topic", self.cell_topic


@dataclass(frozen=True)
class MetricFamily:
    """A metric family as the registry lists it.

    Attributes
    ----------
    name
        The name users request (``"ora"``).
    keys
        Score keys it produces, in order (``("ORA_N", "ORA_U", "ORA_Q")``).
    needs
        Inputs it needs, among the keys of :data:`NEEDS`.
    options
        Its options dataclass (an :class:`Options` subclass), or ``None``.
    compute
        ``compute(inputs: ScoringInput, options) -> MetricResult``.
    after
        Families whose results it reads; they run first.
    aliases
        Other request names (``"ari"``, ``"nmi"`` for ``"clustering"``).
    default
        Part of what ``metrics=None`` asks for (where its inputs are given).
    requires
        ``(module, note)`` pairs: an importable module it needs, and the note shown when a
        leaderboard skips it because the module is missing.
    main
        Score keys shown in the report's ranked tables.
    rank_by
        Score keys in the leaderboard's default ranking.
    detail
        Name of its detail table in ``Evaluation.details`` (``"ora"``), or ``None``.
    """

    name: str
    keys: tuple[str, ...]
    needs: tuple[str, ...]
    options: type[Options] | None
    compute: Callable[[ScoringInput, Any], MetricResult]
    after: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    default: bool = False
    requires: tuple[tuple[str, str], ...] = ()
    main: tuple[str, ...] = ()
    rank_by: tuple[str, ...] = ()
    detail: str | None = None

    def __post_init__(self) -> None:
        unknown = [n for n in self.needs if n not in NEEDS]
        if unknown:
            raise ValueError(f"family {self.name!r}: unknown needs {unknown}; known: {list(NEEDS)}")

    def unavailable(self) -> str | None:
        """The note of the first required module that is not installed, else ``None``."""
        for module, note in self.requires:
            if not module_available(module):
                return note
        return None


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
