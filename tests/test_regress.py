"""Regression checks: baseline format, tolerances, config changes, the CLI and the pytest fixture."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import topiceval as te
from topiceval.cli import main
from topiceval.errors import InputError
from topiceval.leaderboard import regress

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def yan_result():
    """The shipped yan_nmf example scored on Reactome (deterministic: no training, no permutation)."""
    from topiceval.examples import EXAMPLES
    from topiceval.io import read_labels, read_outputs

    example = EXAMPLES["yan_nmf"]
    outputs = read_outputs(example.topic_gene, cell_topic=example.cell_topic, name="yan_nmf")
    labels = read_labels(example.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reactome = te.evaluate(outputs, gene_sets="reactome", labels=labels, metrics="tc,td,tq,ip,ora")
        hallmark = te.evaluate(outputs, gene_sets="hallmark", labels=labels, metrics="tc,td,tq,ip,ora")
    return reactome, hallmark


def entries(**scores):
    return {"format": "topiceval-baseline", "version": 1,
            "entries": [{"key": "m", "config_sha256": "abc", "scores": scores}]}


def test_identical_scores_pass(yan_result, tmp_path):
    reactome, _ = yan_result
    reactome.to_json(tmp_path / "a.json")
    comparison = regress.compare(tmp_path / "a.json", reactome)
    assert comparison.exit_code == 0
    assert set(comparison.table["status"]) == {"ok"}
    assert list(comparison.table["metric"]) == ["TC", "TD", "TQ", "IP", "ORA_N", "ORA_U", "ORA_Q"]
    assert comparison.diff_table() == ""


def test_drift_beyond_tolerance_fails_with_a_diff_table():
    base = entries(TC=0.2, TD=0.9, ORA_N=100.0)
    current = entries(TC=0.2 * (1 + 1e-6), TD=0.9, ORA_N=103.0)
    comparison = regress.compare(base, current)
    assert comparison.exit_code == 1 and comparison.n_drift == 2
    status = comparison.table.set_index("metric")["status"]
    assert status.to_dict() == {"TC": "drift", "TD": "ok", "ORA_N": "drift"}
    table = comparison.diff_table()
    assert "TC" in table and "ORA_N" in table and "TD" not in table.split("\n", 2)[2]
    row = comparison.table.set_index("metric").loc["ORA_N"]
    assert row["diff"] == 3.0 and row["rel_diff"] == pytest.approx(0.03)
    # per-metric tolerances: rtol for TC, atol for ORA_N
    tolerances = regress.parse_tolerance_pairs(["TC=1e-5"], ["ORA_N=3"])
    assert regress.compare(base, current, tolerances=tolerances).exit_code == 0
    assert regress.compare(base, current, tolerances=regress.parse_tolerance_pairs(["TC=1e-5"], ["ORA_N=2.9"])).exit_code == 1
    # a bare value is the default for every metric
    assert regress.compare(base, current, tolerances=regress.parse_tolerance_pairs(["0.05"], None)).exit_code == 0


def test_tolerance_rule_and_nan():
    tol = regress.Tolerance(rtol=0.1, atol=0.01)
    assert tol.holds(1.0, 1.109) and not tol.holds(1.0, 1.111)
    assert tol.holds(0.0, 0.01) and not tol.holds(0.0, 0.0101)
    assert tol.holds(math.nan, math.nan) and tol.holds(None, math.nan)
    assert not tol.holds(math.nan, 0.5) and not tol.holds(0.5, None)
    assert regress.compare(entries(ORA_U=None), entries(ORA_U=None)).exit_code == 0


def test_missing_and_new_values():
    comparison = regress.compare(entries(TC=0.2, TD=0.9), entries(TC=0.2, IP=0.5))
    status = comparison.table.set_index("metric")["status"].to_dict()
    assert status == {"TC": "ok", "TD": "missing", "IP": "new"}
    assert comparison.exit_code == 4 and "MISSING" in comparison.summary()
    extra = {"format": "topiceval-baseline", "version": 1, "entries": [
        {"key": "m", "config_sha256": "abc", "scores": {"TC": 0.2}},
        {"key": "other", "config_sha256": "x", "scores": {"TC": 0.1}}]}
    assert regress.compare(entries(TC=0.2), extra).exit_code == 0  # a new entry is not a failure


def test_changed_gene_sets_are_a_config_change_not_a_regression(yan_result):
    reactome, hallmark = yan_result
    assert reactome.config["config_sha256"] != hallmark.config["config_sha256"]
    comparison = regress.compare(regress.make_baseline(reactome), hallmark)
    assert comparison.n_drift == 0
    assert comparison.exit_code == 3
    assert set(comparison.table["status"]) == {"config changed"}
    assert "configuration changed" in comparison.summary()


def test_baseline_versions_and_formats(tmp_path):
    with pytest.raises(InputError, match="version 2 is newer"):
        regress.load_scores({"format": "topiceval-baseline", "version": 2, "entries": []})
    with pytest.raises(InputError, match="not a valid format version"):
        regress.load_scores({"format": "topiceval-baseline", "version": "1", "entries": []})
    with pytest.raises(InputError, match="not a topiceval baseline"):
        regress.load_scores({"something": 1})
    with pytest.raises(InputError, match="malformed entry"):
        regress.load_scores({"format": "topiceval-baseline", "version": 1, "entries": [{"key": "a"}]})
    with pytest.raises(InputError, match="not found"):
        regress.load_scores(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        regress.load_scores(tmp_path / "bad.json")
    baseline = regress.Baseline({"k": {"config_sha256": "h", "scores": {"TC": 0.5}}},
                                {"default": regress.Tolerance(0, 0), "TC": regress.Tolerance(0.1, 0)},
                                {"created": "now"})
    baseline.write(tmp_path / "b.json")
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["format"] == "topiceval-baseline" and data["version"] == 1
    back = regress.load_scores(tmp_path / "b.json")
    assert back.entries == baseline.entries and back.tolerances == baseline.tolerances
    # tolerances stored in the baseline apply; given ones override them
    current = {"format": "topiceval-baseline", "version": 1,
               "entries": [{"key": "k", "config_sha256": "h", "scores": {"TC": 0.54}}]}
    assert regress.compare(tmp_path / "b.json", current).exit_code == 0
    assert regress.compare(tmp_path / "b.json", current,
                           tolerances={"TC": regress.Tolerance(0.01, 0)}).exit_code == 1


def test_regress_cli_exit_codes(yan_result, tmp_path, capsys):
    reactome, hallmark = yan_result
    reactome.to_json(tmp_path / "reactome.json")
    hallmark.to_json(tmp_path / "hallmark.json")
    baseline = tmp_path / "baseline.json"
    assert main(["regress", "--write-baseline", "--baseline", str(baseline), "--current",
                 str(tmp_path / "reactome.json"), "--rtol", "ORA_N=0"]) == 0
    data = json.loads(baseline.read_text())
    assert data["tolerances"]["ORA_N"] == {"rtol": 0.0, "atol": 1e-12}
    assert main(["regress", "--baseline", str(baseline), "--current", str(tmp_path / "reactome.json")]) == 0
    assert "no regression" in capsys.readouterr().out

    drifted = json.loads((tmp_path / "reactome.json").read_text())
    drifted["TC"] *= 1.01
    (tmp_path / "drifted.json").write_text(json.dumps(drifted))
    assert main(["regress", "--baseline", str(baseline), "--current", str(tmp_path / "drifted.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    header, _, first = out.splitlines()[:3]
    assert header.split() == ["entry", "metric", "baseline", "current", "diff", "rel", "diff", "tolerance", "status"]
    assert first.split()[:2] == ["yan_nmf", "TC"] and first.split()[-1] == "drift"
    assert f"{reactome['TC']:.6g}" in first
    assert main(["regress", "--baseline", str(baseline), "--current", str(tmp_path / "drifted.json"),
                 "--rtol", "TC=0.02"]) == 0

    assert main(["regress", "--baseline", str(baseline), "--current", str(tmp_path / "hallmark.json")]) == 3
    assert "configuration changed" in capsys.readouterr().out
    assert main(["regress", "--baseline", str(baseline), "--current", str(tmp_path / "nope.json")]) == 2
    assert main(["regress", "--baseline", str(baseline), "--current", str(tmp_path / "reactome.json"),
                 "--rtol", "TC=abc"]) == 2


# --------------------------------------------------------------------------- pytest fixture
TEST_FILE = """
import os, warnings
import numpy as np
import topiceval as te

def test_scores(topiceval_regression):
    rng = np.random.default_rng(0)
    genes = te.gene_sets.load("hallmark").genes[:300]
    beta = rng.gamma(1.0, size=(5, 300))
    beta[0, :10] += float(os.environ.get("BUMP", "0"))
    labels = np.repeat(["a", "b", "c"], 20)
    theta = rng.dirichlet(np.ones(5), size=60)
    outputs = te.TopicOutputs(topic_gene=beta, gene_names=np.asarray(genes), cell_topic=theta, name="m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = te.evaluate(outputs, gene_sets=os.environ.get("SETS", "hallmark"), labels=labels)
    topiceval_regression.check(result, rtol={"IP": 0.5})
"""


def test_pytest_fixture_from_the_entry_point(pytester, monkeypatch):
    pytester.makepyfile(test_model=TEST_FILE)
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*no baseline yet; wrote*baselines*test_model*test_scores.json*"])
    baseline = pytester.path / "baselines" / "test_model" / "test_scores.json"
    data = json.loads(baseline.read_text())
    assert data["format"] == "topiceval-baseline" and data["tolerances"]["IP"]["rtol"] == 0.5

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    monkeypatch.setenv("BUMP", "5")  # the top genes of topic 0 change: TC and TD drift
    drift = pytester.runpytest("-p", "no:cacheprovider")
    drift.assert_outcomes(failed=1)
    drift.stdout.fnmatch_lines(["*metric values drifted*", "*entry*metric*baseline*current*", "*drift*"])

    monkeypatch.setenv("BUMP", "0")
    monkeypatch.setenv("SETS", "reactome")  # another collection: not comparable, not a regression
    changed = pytester.runpytest("-p", "no:cacheprovider")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*the configuration changed*not a regression*"])
    assert "drifted" not in changed.stdout.str()

    pytester.runpytest("-p", "no:cacheprovider", "--topiceval-update-baselines").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert np.isfinite(json.loads(baseline.read_text())["entries"][0]["scores"]["TC"])


def test_plugin_is_registered_as_a_pytest11_entry_point():
    from importlib.metadata import entry_points

    points = [ep for ep in entry_points(group="pytest11") if ep.name == "topiceval"]
    assert [ep.value for ep in points] == ["topiceval.leaderboard.pytest_plugin"]


def test_different_models_are_not_compared_silently(yan_result, tmp_path, capsys):
    """An NMF result against an scE2TM baseline with the same configuration: 'model differs'."""
    reactome, _ = yan_result
    data = reactome.to_dict()
    (tmp_path / "nmf.json").write_text(json.dumps(data))
    other = json.loads(json.dumps(data))
    other["config"]["model"]["name"] = "sce2tm"
    (tmp_path / "sce2tm.json").write_text(json.dumps(other))
    comparison = regress.compare(tmp_path / "sce2tm.json", tmp_path / "nmf.json")
    assert set(comparison.table["status"]) == {"model differs"} and comparison.n_drift == 0
    assert comparison.exit_code == 5
    assert "'sce2tm'" in comparison.summary() and "'yan_nmf'" in comparison.summary()
    # the same model under two names: --key says so, and the values are compared
    assert main(["regress", "--baseline", str(tmp_path / "sce2tm.json"), "--current", str(tmp_path / "nmf.json"),
                 "--key", "m"]) == 0
    assert main(["regress", "--baseline", str(tmp_path / "sce2tm.json"), "--current", str(tmp_path / "nmf.json")]) == 5
    assert "different model" in capsys.readouterr().out
    # the same name but another shape (more topics) is another model too
    wider = json.loads(json.dumps(data))
    wider["config"]["model"]["n_topics"] += 1
    shaped = regress.compare(regress.make_baseline(reactome), wider)
    assert shaped.exit_code == 5 and "n_topics" in shaped.summary()
    # a baseline written from a result keeps the model, so a baseline file compares it too
    baseline = tmp_path / "baseline.json"
    regress.make_baseline(reactome).write(baseline)
    assert json.loads(baseline.read_text())["entries"][0]["model"]["n_topics"] == reactome.config["model"]["n_topics"]
    assert regress.compare(baseline, wider).exit_code == 5


def test_fewer_metrics_under_another_configuration_is_a_config_change(yan_result):
    """Other gene sets and fewer metrics: a configuration change (exit 3), not drift (exit 1)."""
    reactome, hallmark = yan_result
    fewer = {k: v for k, v in hallmark.to_dict().items() if k not in ("ORA_N", "ORA_U", "ORA_Q")}
    comparison = regress.compare(regress.make_baseline(reactome), fewer)
    assert comparison.exit_code == 3 and "REGRESSION" not in comparison.summary()
    assert set(comparison.table["status"]) == {"config changed"}


def test_unknown_metric_in_a_tolerance_is_refused(yan_result, tmp_path, capsys):
    reactome, _ = yan_result
    reactome.to_json(tmp_path / "r.json")
    with pytest.raises(InputError, match="GSEA_X"):
        regress.compare(reactome, reactome, tolerances=regress.parse_tolerance_pairs(["GSEA_X=0.05"], None))
    for flag in ("--rtol", "--atol"):
        assert main(["regress", "--baseline", str(tmp_path / "r.json"), "--current", str(tmp_path / "r.json"),
                     flag, "GSEA_X=0.05"]) == 2
        err = capsys.readouterr().err
        assert "GSEA_X" in err and "TC" in err  # names the typo and the metrics there are
    assert main(["regress", "--write-baseline", "--baseline", str(tmp_path / "b.json"), "--current",
                 str(tmp_path / "r.json"), "--rtol", "GSEA_X=0.05"]) == 2
    assert not (tmp_path / "b.json").exists()
    # a bare default and a real metric are fine
    assert main(["regress", "--baseline", str(tmp_path / "r.json"), "--current", str(tmp_path / "r.json"),
                 "--rtol", "0.01", "--rtol", "TC=0.1"]) == 0
