"""The project checks itself: a fixed, seeded run on shipped data against a committed baseline.

``tests/data/self_regression.toml`` trains NMF (K = 10, seed 0) on the shipped Pollen dataset
through the leaderboard runner and scores it with every metric on the shipped Reactome and
Hallmark collections; ``tests/data/self_regression_baseline.json`` holds the values. NMF (nndsvda
start, multiplicative updates), TC / TD / TQ / IP / ORA (closed form), GSEA (seeded permutations)
and the clustering (seeded Louvain) are deterministic: the values were reproduced bitwise by
independent runs. The tolerance (stored in the baseline: rtol 1e-9, atol 1e-12, so the integer
counts ORA_N and GSEA_N are exact) only allows floating-point rounding from another BLAS or CPU.
Any metric change shows here; update the baseline knowingly and note it in CHANGELOG.md.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from topiceval.leaderboard import load_config, regress, runner

DATA = Path(__file__).resolve().parent / "data"


def test_shipped_run_matches_the_committed_baseline(tmp_path):
    config = load_config(DATA / "self_regression.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = runner.run(config, cache=tmp_path, progress=False)
    assert list(results.cells["status"]) == ["done"]
    baseline = json.loads((DATA / "self_regression_baseline.json").read_text())
    assert baseline["format"] == regress.BASELINE_FORMAT and baseline["version"] == regress.BASELINE_VERSION
    assert baseline["tolerances"] == {}  # the defaults apply: rtol 1e-9, atol 1e-12
    comparison = regress.compare(DATA / "self_regression_baseline.json", results)
    assert comparison.exit_code == 0, comparison.diff_table() + "\n" + comparison.summary()
    compared = comparison.table
    assert len(compared) == 15 + 3 and set(compared["status"]) == {"ok"}
    assert set(compared["key"]) == {"pollen_hvg5000/nmf/seed0/reactome", "pollen_hvg5000/nmf/seed0/hallmark"}


def test_a_changed_option_is_reported_as_a_config_change(tmp_path):
    config = load_config(DATA / "self_regression.toml")
    config = config.replace(collections=config.collections[1:])  # Hallmark only: cheap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = runner.run(config, cache=tmp_path, progress=False)
        other = runner.run(config.replace(evaluation={**config.evaluation, "top_n": 12}), cache=tmp_path,
                           progress=False)
    baseline = DATA / "self_regression_baseline.json"
    partial = regress.compare(baseline, same)
    assert partial.exit_code == 4  # the Reactome entry is missing from this run (its own exit status)
    assert partial.table.groupby("key")["status"].agg(set).to_dict() == {
        "pollen_hvg5000/nmf/seed0/hallmark": {"ok"}, "pollen_hvg5000/nmf/seed0/reactome": {"missing"}}
    comparison = regress.compare(regress.make_baseline(same), other)
    assert comparison.exit_code == 3 and comparison.n_drift == 0
