"""The registry of metric families: the one list that ``evaluate()``, ``topiceval score``, the
leaderboard's TOML and the report read.

Everything about a metric family is declared once, in its own module (see
:mod:`topiceval.metrics._family`): its options dataclass (names, defaults, allowed values, docs),
its score keys, the inputs it needs and how it is computed. From :data:`FAMILIES` follow

* ``evaluate(**options)``'s keywords and :class:`topiceval.EvaluationOptions` (:func:`option_specs`);
* the ``topiceval score`` flags (``--ora-alpha`` for ``ora_alpha``, old spellings as deprecated
  aliases);
* the valid ``[evaluation]`` keys and ``metrics = [...]`` names of a leaderboard TOML;
* the report's metric columns (:func:`score_keys`, :func:`main_keys`, :func:`rank_keys`).

How to add a metric family (say cell-type specificity, ``"specificity"``)
--------------------------------------------------------------------------
1. Write ``topiceval/metrics/specificity.py`` with

   * the metric function, arrays in, :class:`~topiceval.metrics.MetricResult` out (build it with
     ``MetricResult(pd.Series({"SPEC": value}), per_topic=frame, table=long_table, info=facts)``);
   * its options, if any: ``@dataclass(frozen=True) class SpecificityOptions(Options)`` (or
     derive from ``TopNOption`` / ``SeedOption`` / ``NJobsOption`` to read those shared options)
     with fields ``spec_min_cells: int = option(10, "one-line doc", kind="int", low=1)``; put
     cross-field checks in ``_check`` (call ``super()._check()`` first). Names are global: prefix
     them with the family (``spec_``);
   * ``def _compute(inputs: ScoringInput, options: SpecificityOptions) -> MetricResult`` reading
     ``inputs.cell_topic``, ``inputs.labels``, ... and calling the metric function;
   * ``FAMILY = MetricFamily("specificity", ("SPEC",), ("labels", "cell_topic"), SpecificityOptions,
     _compute, main=("SPEC",))`` (``needs`` among ``topic_gene``, ``gene_sets``, ``labels``,
     ``cell_topic``, ``cells``; ``requires=(("module", "note"),)`` for an optional dependency;
     ``default=True`` to run it when ``metrics=None``; ``detail="specificity"`` to expose its
     table in ``Evaluation.details``).
2. Add one line to :data:`FAMILIES` below: ``specificity.FAMILY,``.

Nothing else changes: the option becomes an ``evaluate()`` keyword, a ``topiceval score`` flag and
a TOML key, the keys become report columns, and ``tests/test_registry.py`` checks that every option
is reachable with the same name and default from all three. A new option of an existing family is
one more field of its dataclass; pass ``runtime=True`` if it changes no number (threads, a device),
or ``hashed_at_default=False`` so that baselines made before it existed keep their
``config_sha256`` while it is at its default.
"""

from __future__ import annotations

from collections.abc import Iterable

from topiceval._utils import preview
from topiceval.errors import InputError
from topiceval.metrics import celltype, clustering, coherence, diversity, gsea, ora, purity
from topiceval.metrics._family import MetricFamily, OptionSpec, option_specs

__all__ = [
    "DEFAULT_METRICS",
    "FAMILIES",
    "METRICS",
    "METRIC_ALIASES",
    "canonical_metric",
    "main_keys",
    "option_specs_all",
    "rank_keys",
    "resolve_metrics",
    "score_keys",
]

#: Every metric family, in the order their scores are reported.
FAMILIES: tuple[MetricFamily, ...] = (
    coherence.FAMILY,
    diversity.TD_FAMILY,
    diversity.TQ_FAMILY,
    purity.FAMILY,
    ora.FAMILY,
    gsea.FAMILY,
    clustering.FAMILY,
    celltype.FAMILY,
)

#: Families by request name.
METRICS: dict[str, MetricFamily] = {family.name: family for family in FAMILIES}

#: Other request names, resolved to a family (``ari`` and ``nmi`` run ``clustering``).
METRIC_ALIASES: dict[str, str] = {alias: family.name for family in FAMILIES for alias in family.aliases}

#: What ``metrics=None`` asks for (each only where its inputs are given).
DEFAULT_METRICS: tuple[str, ...] = tuple(family.name for family in FAMILIES if family.default)


def option_specs_all() -> list[OptionSpec]:
    """Every declared option once, in registry order (shared options where first declared).

    Raises ``ValueError`` if two families declare different options under one name.
    """
    seen: dict[str, OptionSpec] = {}
    for family in FAMILIES:
        if family.options is None:
            continue
        for spec in option_specs(family.options):
            other = seen.get(spec.name)
            if other is None:
                seen[spec.name] = spec
            elif other.owner is not spec.owner:
                raise ValueError(f"option {spec.name!r} is declared twice ({other.owner.__name__}, "
                                 f"{spec.owner.__name__}); share one declaration")
    return list(seen.values())


def canonical_metric(name: str) -> str:
    """The family name a request name stands for (``"ARI"`` -> ``"clustering"``)."""
    key = str(name).strip().lower()
    key = METRIC_ALIASES.get(key, key)
    if key not in METRICS:
        raise InputError(f"unknown metric(s) {name!r}; valid: {', '.join([*METRICS, *METRIC_ALIASES])}")
    return key


def resolve_metrics(metrics: str | Iterable[str] | None, available: set[str]) -> list[str]:
    """Validate a metric request; returns the family names in run order.

    ``None`` means :data:`DEFAULT_METRICS` restricted to those whose inputs are ``available``;
    ``"all"`` means every registered family. A string may list names separated by commas.
    Unknown names fail with the list of valid ones.
    """
    if metrics is None:
        requested = [m for m in DEFAULT_METRICS if set(METRICS[m].needs) <= available]
    else:
        if isinstance(metrics, str):
            metrics = metrics.split(",")
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


def score_keys() -> tuple[str, ...]:
    """Every score key, in report order."""
    return tuple(key for family in FAMILIES for key in family.keys)


def main_keys() -> tuple[str, ...]:
    """The keys of the report's ranked tables."""
    return tuple(key for family in FAMILIES for key in family.main)


def rank_keys() -> tuple[str, ...]:
    """The keys of the leaderboard's default ranking."""
    return tuple(key for family in FAMILIES for key in family.rank_by)
