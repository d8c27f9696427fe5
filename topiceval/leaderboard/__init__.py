"""Leaderboards, reports and regression checks (installed as ``topiceval.leaderboard``).

* :mod:`.config`: the TOML configuration (:func:`load_config`, :class:`LeaderboardConfig`):
  datasets x models x seeds x gene-set collections, evaluation options, backend.
* :mod:`.runner`: :func:`run` trains every cell through :mod:`topiceval.adapters.registry` and
  scores it through :func:`topiceval.evaluate`, with a content-addressed, resumable cache and
  joblib (processes), dask.distributed or sequential execution; :class:`Results`.
* :mod:`.report`: :func:`write_report`: self-contained HTML (embedded matplotlib plots), a
  Markdown summary, CSV / JSON of every number.
* :mod:`.regress`: versioned baselines, :func:`compare` with per-metric tolerances and a diff
  table (``topiceval regress``); :mod:`.pytest_plugin`: the ``topiceval_regression`` fixture.
* :mod:`.demo`: ``topiceval demo``.

The leaderboard computes no metric itself. Submodules are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Baseline",
    "Comparison",
    "LeaderboardConfig",
    "Results",
    "Tolerance",
    "compare",
    "demo_config",
    "load_config",
    "make_baseline",
    "run",
    "run_demo",
    "write_report",
]

_WHERE = {
    "LeaderboardConfig": "config",
    "load_config": "config",
    "Results": "runner",
    "run": "runner",
    "write_report": "report",
    "Baseline": "regress",
    "Comparison": "regress",
    "Tolerance": "regress",
    "compare": "regress",
    "make_baseline": "regress",
    "demo_config": "demo",
    "run_demo": "demo",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
