"""Regression checks on metric values: a versioned baseline, a comparison, a diff table.

Baseline format (JSON, ``format = "topiceval-baseline"``, ``version = 1``)::

    {
      "format": "topiceval-baseline",
      "version": 1,
      "created": "2025-01-01T00:00:00+0000",
      "topiceval": "0.1.0",
      "tolerances": {"default": {"rtol": 1e-09, "atol": 1e-12}, "GSEA_N": {"rtol": 0.05, "atol": 0}},
      "entries": [
        {"key": "pollen/nmf/seed0/reactome", "config_sha256": "...", "scores": {"TC": 0.18, ...}}
      ]
    }

``config_sha256`` identifies everything that changes the numbers of an entry (the evaluation's
``config_sha256``: metrics, options, gene-set content; for leaderboard entries also the data and
training settings). When it differs between baseline and current, the entry's values are not
comparable: it is reported as ``config changed`` (exit status 3), never as a regression; a metric
the changed configuration no longer computes (other gene sets, fewer metrics) is part of that
change, not a missing value.

The model is part of what is compared: an entry of an evaluation records the model's name and
shape (topics, genes, cells). Two single evaluations of different models (an NMF result against an
scE2TM baseline), or entries whose shapes differ, are reported as ``model differs`` (exit status 5);
``key=`` (``topiceval regress --key NAME``) states that two differently named files hold the same
model.

What :func:`load_scores` accepts as "current" (and as a baseline to convert): a baseline file, a
leaderboard ``results.json`` (or its folder), or the JSON of one evaluation
(``topiceval score --out``, :meth:`topiceval.Evaluation.to_json`).

Exit statuses of ``topiceval regress`` (:data:`EXIT`), the first that applies: 1 drift beyond
tolerance; 4 a baseline entry or metric missing from the current results (same configuration); 5
the model differs; 3 the configuration changed; 0 every value within tolerance; 2 bad input (the
CLI's user-error status, also for a tolerance naming a metric that neither side has).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from topiceval._utils import PathLike, as_path
from topiceval.errors import InputError
from topiceval.io import write_json

__all__ = [
    "BASELINE_FORMAT",
    "BASELINE_VERSION",
    "DEFAULT_TOLERANCE",
    "EXIT",
    "Baseline",
    "Comparison",
    "Tolerance",
    "check_tolerance_names",
    "compare",
    "load_scores",
    "make_baseline",
    "parse_tolerances",
]

BASELINE_FORMAT = "topiceval-baseline"
BASELINE_VERSION = 1
#: Exit statuses (see the module docstring).
EXIT = {"ok": 0, "drift": 1, "config_changed": 3, "missing": 4, "model_differs": 5}


@dataclass(frozen=True)
class Tolerance:
    """``|current - baseline| <= atol + rtol * |baseline|`` (NaN equals NaN)."""

    rtol: float = 1e-9
    atol: float = 1e-12

    def holds(self, baseline: float | None, current: float | None) -> bool:
        b = math.nan if baseline is None else float(baseline)
        c = math.nan if current is None else float(current)
        if math.isnan(b) or math.isnan(c):
            return math.isnan(b) and math.isnan(c)
        return abs(c - b) <= self.atol + self.rtol * abs(b)

    def to_dict(self) -> dict[str, float]:
        return {"rtol": self.rtol, "atol": self.atol}


DEFAULT_TOLERANCE = Tolerance()


@dataclass
class Baseline:
    """Score sets by key, each with the hash of the configuration that produced it.

    Attributes
    ----------
    entries
        ``{key: {"config_sha256": str, "scores": {metric: value}}}``.
    tolerances
        ``{"default": Tolerance, metric: Tolerance}``.
    meta
        ``created``, ``topiceval`` version, anything else recorded.
    """

    entries: dict[str, dict[str, Any]]
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def tolerance(self, metric: str, overrides: Mapping[str, Tolerance] | None = None) -> Tolerance:
        overrides = overrides or {}
        for source in (overrides, self.tolerances):
            if metric in source:
                return source[metric]
        return overrides.get("default") or self.tolerances.get("default") or DEFAULT_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            **self.meta,
            "tolerances": {name: tol.to_dict() for name, tol in self.tolerances.items()},
            "entries": [{"key": key, **entry} for key, entry in self.entries.items()],
        }

    def write(self, path: PathLike) -> None:
        """Write the baseline JSON atomically."""
        from .runner import readable

        write_json(self.to_dict(), path)
        readable(path)


def make_baseline(source: Any, *, tolerances: Mapping[str, Tolerance | Mapping[str, float]] | None = None,
                  key: str | None = None) -> Baseline:
    """A baseline from current results.

    Parameters
    ----------
    source
        What :func:`load_scores` accepts, or a :class:`topiceval.Evaluation`, or
        :class:`topiceval.leaderboard.Results`.
    tolerances
        Stored with the baseline: ``{"default": Tolerance(...), "GSEA_N": {"rtol": 0.05}}``.
    key
        Entry key for a single evaluation (default: the model name).
    """
    from topiceval import __version__

    current = load_scores(source, key=key)
    check_tolerance_names(tolerances, current)
    parsed = {name: (tol if isinstance(tol, Tolerance) else Tolerance(**tol)) for name, tol in (tolerances or {}).items()}
    return Baseline(entries=current.entries, tolerances=parsed or dict(current.tolerances),
                    meta={"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "topiceval": __version__})


def _from_evaluation_dict(data: Mapping[str, Any], key: str | None) -> dict[str, dict[str, Any]]:
    config = data["config"]
    scores = {k: v for k, v in data.items() if k not in ("config", "per_topic")}
    model = config.get("model") or {}
    name = key or model.get("name") or "result"
    identity = {k: model[k] for k in _MODEL_KEYS if model.get(k) is not None}
    return {name: {"config_sha256": config.get("config_sha256"), "scores": scores,
                   **({"model": identity} if identity else {})}}


#: What identifies the model of an evaluation entry.
_MODEL_KEYS = ("name", "n_topics", "n_genes", "n_cells")


def load_scores(source: Any, *, key: str | None = None) -> Baseline:
    """Read scores in any supported form (see the module docstring) as a :class:`Baseline`.

    Raises
    ------
    InputError
        A missing or unreadable file, an unknown format, or a baseline version newer than this
        topiceval understands.
    """
    from topiceval.evaluate import Evaluation

    from .runner import Results

    if isinstance(source, Baseline):
        return source
    if isinstance(source, Evaluation):
        return Baseline(_from_evaluation_dict(source.to_dict(), key))
    if isinstance(source, Results):
        data: Any = source.to_dict()
    elif isinstance(source, Mapping):
        data = source
    else:
        path = as_path(source)
        if path.is_dir():
            path = path / "results.json"
        if not path.is_file():
            raise InputError(f"scores file not found: {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise InputError("scores: expected a JSON object")
    kind = data.get("format")
    if kind == BASELINE_FORMAT:
        found = data.get("version")
        if not isinstance(found, int) or found < 1:
            raise InputError(f"baseline: version {found!r} is not a valid format version")
        if found > BASELINE_VERSION:
            raise InputError(f"baseline format version {found} is newer than this topiceval understands "
                             f"(version {BASELINE_VERSION}); upgrade topiceval")
        tolerances = {name: Tolerance(**tol) for name, tol in (data.get("tolerances") or {}).items()}
        meta = {k: v for k, v in data.items() if k not in ("format", "version", "tolerances", "entries")}
        return Baseline(_entries(data.get("entries", [])), tolerances, meta)
    if kind == "topiceval-leaderboard":
        return Baseline(_entries(data.get("entries", [])), meta={"config_sha256": data.get("config", {}).get("config_sha256")})
    if "config" in data and isinstance(data["config"], Mapping) and "config_sha256" in data["config"]:
        return Baseline(_from_evaluation_dict(data, key))
    raise InputError("scores: not a topiceval baseline, leaderboard results.json or evaluation JSON")


def _entries(items: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, Mapping) or "key" not in item or "scores" not in item:
            raise InputError(f"baseline: malformed entry {item!r}")
        if item["key"] in out:
            raise InputError(f"baseline: duplicate entry {item['key']!r}")
        out[str(item["key"])] = {"config_sha256": item.get("config_sha256"), "scores": dict(item["scores"])}
        if isinstance(item.get("model"), Mapping):
            out[str(item["key"])]["model"] = dict(item["model"])
    return out


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    table
        One row per (entry, metric): ``key, metric, baseline, current, diff, rel_diff, rtol,
        atol, status`` with status ``ok``, ``drift``, ``missing`` (in the baseline, not in the
        current results, same configuration), ``new`` (only in the current results),
        ``config changed`` or ``model differs``.
    notes
        Sentences explaining ``model differs`` rows (which models were compared).
    """

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def n_drift(self) -> int:
        """Values beyond tolerance (``drift`` rows)."""
        return int((self.table["status"] == "drift").sum())

    @property
    def n_missing(self) -> int:
        """Baseline values the current results lack under the same configuration."""
        return int((self.table["status"] == "missing").sum())

    @property
    def model_differs(self) -> list[str]:
        return sorted(set(self.table.loc[self.table["status"] == "model differs", "key"]))

    @property
    def config_changed(self) -> list[str]:
        return sorted(set(self.table.loc[self.table["status"] == "config changed", "key"]))

    @property
    def exit_code(self) -> int:
        """1 drift, 4 missing values, 5 model differs, 3 configuration changed, 0 ok (first that applies)."""
        if self.n_drift:
            return EXIT["drift"]
        if self.n_missing:
            return EXIT["missing"]
        if self.model_differs:
            return EXIT["model_differs"]
        if self.config_changed:
            return EXIT["config_changed"]
        return EXIT["ok"]

    def summary(self) -> str:
        counts = self.table["status"].value_counts()
        parts = [f"{int(counts.get(s, 0))} {s}" for s in
                 ("ok", "drift", "missing", "model differs", "config changed", "new") if counts.get(s, 0)]
        verdict = {0: "no regression", 1: "REGRESSION: values drifted beyond tolerance",
                   4: "MISSING: baseline values absent from the current results (same configuration)",
                   5: "different model: values not comparable (compare results of the same model)",
                   3: "configuration changed: values not comparable, not a regression (update the baseline "
                      "knowingly)"}[self.exit_code]
        return "\n".join([*self.notes, f"{verdict} ({', '.join(parts) or 'nothing compared'})"])

    def diff_table(self, *, show_all: bool = False) -> str:
        """Plain-text table of the rows that are not ``ok`` (all rows with ``show_all``)."""
        from .report import text_table

        rows = self.table if show_all else self.table[self.table["status"] != "ok"]
        if rows.empty:
            return ""

        def fmt(value: Any) -> str:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return "nan" if value is not None else ""
            return f"{value:.6g}"

        body = [[r.key, r.metric, fmt(r.baseline), fmt(r.current), fmt(r.diff), fmt(r.rel_diff),
                 f"rtol={r.rtol:g} atol={r.atol:g}", r.status] for r in rows.itertuples()]
        return text_table(["entry", "metric", "baseline", "current", "diff", "rel diff", "tolerance", "status"], body)


def parse_tolerances(items: Any) -> dict[str, Tolerance]:
    """``["GSEA_N=0.05", "1e-6"]`` (rtol per metric, or a bare default) into tolerances.

    Accepts a list of ``METRIC=VALUE`` / ``VALUE`` strings, or a mapping of metric to value; the
    values are relative tolerances (see :func:`parse_tolerance_pairs` for atol).
    """
    return parse_tolerance_pairs(items, None)


def parse_tolerance_pairs(rtol: Any, atol: Any) -> dict[str, Tolerance]:
    """Merge ``--rtol`` and ``--atol`` lists (``METRIC=VALUE`` or a bare default) into tolerances."""
    values: dict[str, dict[str, float]] = {}
    for kind, items in (("rtol", rtol), ("atol", atol)):
        if not items:
            continue
        pairs = items.items() if isinstance(items, Mapping) else [
            (item.partition("=")[0], item.partition("=")[2]) if "=" in item else ("default", item) for item in items]
        for metric, value in pairs:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(f"--{kind} expects METRIC=NUMBER or NUMBER, got {metric}={value!r}") from None
            if number < 0 or math.isnan(number):
                raise InputError(f"--{kind} must be >= 0, got {metric}={value}")
            values.setdefault(metric.strip() or "default", {})[kind] = number
    return {metric: Tolerance(**{**DEFAULT_TOLERANCE.to_dict(), **given}) for metric, given in values.items()}


def check_tolerance_names(tolerances: Mapping[str, Any] | None, *sides: Baseline) -> None:
    """Refuse a tolerance for a metric that none of ``sides`` holds (a typo such as ``GSEA_X``)."""
    known = {metric for side in sides for entry in side.entries.values() for metric in entry["scores"]}
    unknown = sorted(set(tolerances or {}) - known - {"default"})
    if unknown:
        raise InputError(
            f"--rtol/--atol name no metric of these scores: {', '.join(unknown)}; metrics: "
            f"{', '.join(sorted(known)) or 'none'}"
        )


def _model_mismatch(base: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> str | None:
    """How two entries' recorded models differ (shape only: names are the keys), or ``None``."""
    if not base or not current:
        return None
    changed = [f"{k} {base[k]} vs {current[k]}" for k in ("n_topics", "n_genes", "n_cells")
               if k in base and k in current and base[k] != current[k]]
    return ", ".join(changed) or None


def compare(baseline: Any, current: Any, *, tolerances: Mapping[str, Tolerance] | None = None,
            key: str | None = None) -> Comparison:
    """Compare current scores with a baseline.

    Parameters
    ----------
    baseline, current
        Anything :func:`load_scores` reads (paths, dicts, :class:`topiceval.Evaluation`,
        leaderboard results).
    tolerances
        Per-metric tolerances (``"default"`` for every other metric) overriding those stored in
        the baseline.
    key
        Entry key for a single evaluation on either side. When both sides hold one entry each
        under different keys (two evaluation JSONs of differently named models), they are
        compared with each other.

    Returns
    -------
    Comparison
    """
    base = load_scores(baseline, key=key)
    cur = load_scores(current, key=key)
    check_tolerance_names(tolerances, base, cur)
    notes: list[str] = []
    different: dict[str, str] = {}
    if len(base.entries) == 1 and len(cur.entries) == 1 and set(base.entries) != set(cur.entries):
        # Two single evaluations of differently named models: not comparable, and said so.
        only, theirs = next(iter(base.entries)), next(iter(cur.entries))
        cur = Baseline({only: next(iter(cur.entries.values()))})
        different[only] = f"baseline model {only!r}, current model {theirs!r}"
        notes.append(f"the baseline holds model {only!r} but the current results hold {theirs!r}; if they "
                     f"are the same model under two names, compare with --key NAME (key= in Python)")
    rows = []
    for name, entry in base.entries.items():
        other = cur.entries.get(name)
        mismatch = None if other is None else _model_mismatch(entry.get("model"), other.get("model"))
        if mismatch and name not in different:
            different[name] = mismatch
            notes.append(f"{name}: the model differs ({mismatch})")
        changed = other is not None and entry.get("config_sha256") != other.get("config_sha256")
        for metric, value in entry["scores"].items():
            tol = base.tolerance(metric, tolerances)
            now = None if other is None else other["scores"].get(metric)
            if name in different:
                status = "model differs"
            elif changed:  # a metric the new configuration no longer computes is part of the change
                status = "config changed"
            elif other is None or metric not in other["scores"]:
                status = "missing"
            else:
                status = "ok" if tol.holds(value, now) else "drift"
            rows.append(_row(name, metric, value, now, tol, status))
        if other is not None:
            for metric in other["scores"]:
                if metric not in entry["scores"]:
                    rows.append(_row(name, metric, None, other["scores"][metric], base.tolerance(metric, tolerances), "new"))
    for name, other in cur.entries.items():
        if name not in base.entries:
            for metric, now in other["scores"].items():
                rows.append(_row(name, metric, None, now, base.tolerance(metric, tolerances), "new"))
    columns = ["key", "metric", "baseline", "current", "diff", "rel_diff", "rtol", "atol", "status"]
    return Comparison(pd.DataFrame(rows, columns=columns), notes)


def _row(key: str, metric: str, baseline: Any, current: Any, tol: Tolerance, status: str) -> dict[str, Any]:
    b = math.nan if baseline is None else float(baseline)
    c = math.nan if current is None else float(current)
    diff = c - b
    rel = diff / abs(b) if b not in (0.0,) and not math.isnan(b) else math.nan
    return {"key": key, "metric": metric, "baseline": b, "current": c, "diff": diff, "rel_diff": rel,
            "rtol": tol.rtol, "atol": tol.atol, "status": status}
