"""pytest plugin: the ``topiceval_regression`` fixture (registered through the ``pytest11`` entry point).

Installing topiceval makes the fixture available in any project's tests::

    def test_my_model_scores(topiceval_regression):
        result = topiceval.evaluate(outputs, gene_sets="reactome", labels=labels)
        topiceval_regression.check(result)                      # exact up to 1e-9 relative
        topiceval_regression.check(result, rtol={"GSEA_N": 0.05})

The baseline of a check is ``<test folder>/baselines/<test module>/<test name>[-<name>].json``
(the :mod:`~topiceval.leaderboard.regress` format; ``topiceval_baseline_dir`` in the pytest ini
options changes the folder). A missing baseline is written and the test fails once, asking for it
to be reviewed and committed; ``--topiceval-update-baselines`` rewrites baselines and passes.
Drift fails with the diff table; a changed configuration (``config_sha256``: other gene sets,
options or metrics) fails with a message that says so, as it is not a regression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RegressionFixture", "topiceval_regression"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("topiceval", "topiceval regression baselines")
    group.addoption("--topiceval-update-baselines", action="store_true", default=False,
                    help="rewrite the baselines of topiceval_regression checks with the current values")
    parser.addini("topiceval_baseline_dir", "folder of topiceval_regression baselines, relative to each "
                  "test file (default: baselines)", default="baselines")


class RegressionFixture:
    """What the ``topiceval_regression`` fixture gives a test (see the module docstring)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.update = bool(request.config.getoption("--topiceval-update-baselines"))
        folder = request.config.getini("topiceval_baseline_dir") or "baselines"
        test_file = Path(str(request.node.path))
        self.folder = test_file.parent / folder / test_file.stem

    def path(self, name: str | None = None) -> Path:
        """The baseline file of this test (and ``name``)."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self._request.node.name)
        if name:
            stem += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        return self.folder / f"{stem}.json"

    def check(self, result: Any, *, name: str | None = None, rtol: float | Mapping[str, float] | None = None,
              atol: float | Mapping[str, float] | None = None) -> Any:
        """Compare ``result`` with its baseline; fail the test on drift or a changed configuration.

        Parameters
        ----------
        result
            A :class:`topiceval.Evaluation`, :class:`topiceval.leaderboard.Results`, or the path or
            dict of a result JSON.
        name
            Distinguishes several checks in one test.
        rtol, atol
            A number (every metric) or ``{metric: number}``; they are stored in a new baseline and
            override a stored one's.

        Returns
        -------
        topiceval.leaderboard.regress.Comparison
            When the check passes.
        """
        from .regress import Baseline, compare, make_baseline, parse_tolerance_pairs

        def pairs(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, Mapping):
                return {k: v for k, v in value.items()}
            return {"default": value}

        tolerances = parse_tolerance_pairs(pairs(rtol), pairs(atol))
        path = self.path(name)
        key = "result"
        if self.update or not path.exists():
            created = not path.exists()
            baseline: Baseline = make_baseline(result, tolerances=tolerances, key=key)
            baseline.write(path)
            if created and not self.update:
                pytest.fail(f"topiceval_regression: no baseline yet; wrote {path}. Review it, commit it and "
                            "run the test again.", pytrace=False)
            return None
        comparison = compare(path, result, tolerances=tolerances or None, key=key)
        if comparison.exit_code == 0:
            return comparison
        table = comparison.diff_table()
        if comparison.n_drift or comparison.n_missing or comparison.model_differs:
            what = "drifted from" if comparison.n_drift else (
                "are missing from" if comparison.n_missing else "come from another model than")
            pytest.fail(f"topiceval_regression: metric values {what} {path}\n{table}\n"
                        f"{comparison.summary()}", pytrace=False)
        pytest.fail(f"topiceval_regression: the configuration changed (config_sha256 differs: gene sets, "
                    f"options or metrics), so the values are not comparable with {path}; this is not a "
                    f"regression. Rerun with --topiceval-update-baselines to accept the new configuration.\n"
                    f"{table}", pytrace=False)


@pytest.fixture
def topiceval_regression(request: pytest.FixtureRequest) -> RegressionFixture:
    """Compare topiceval scores with a committed baseline (see :class:`RegressionFixture`)."""
    return RegressionFixture(request)
