"""ORA and GSEA through evaluate(), Evaluation.write_details and `topiceval score`."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from topiceval import evaluate
from topiceval.cli import main
from topiceval.errors import InputError
from topiceval.evaluate import DEFAULT_METRICS, METRICS
from topiceval.examples import EXAMPLES
from topiceval.io import read_outputs
from topiceval.metrics import GSEA_COLUMNS, ORA_COLUMNS, topic_gsea, topic_ora


@pytest.fixture(scope="module")
def outputs():
    return read_outputs(EXAMPLES["yan_nmf"].topic_gene, name="yan_nmf")


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def result(outputs, c2):
    return quiet(evaluate, outputs, c2, metrics="ora,gsea", gsea_n_perm=300, ora_alpha=0.05, seed=3)


def test_scores_and_tables_are_the_metric_functions(result, outputs, c2):
    assert list(result.scores.index) == ["ORA_N", "ORA_U", "ORA_Q", "GSEA_N", "GSEA_U", "GSEA_Q"]
    ora = quiet(topic_ora, outputs.topic_gene, outputs.gene_names, c2, 10, alpha=0.05)
    gsea = quiet(topic_gsea, outputs.topic_gene, outputs.gene_names, c2, n_perm=300, seed=3)
    for mine in (ora, gsea):
        for key, value in mine.scores.items():
            assert result[key] == pytest.approx(value, nan_ok=True)
    pd.testing.assert_frame_equal(result.details["ora"], ora.table)
    pd.testing.assert_frame_equal(result.details["gsea"], gsea.table)
    assert list(result.details["ora"].columns) == list(ORA_COLUMNS)
    assert list(result.details["gsea"].columns) == list(GSEA_COLUMNS)
    np.testing.assert_array_equal(result.per_topic["ORA_N"], ora.per_topic["ORA_N"])
    np.testing.assert_array_equal(result.per_topic["GSEA_N"], gsea.per_topic["GSEA_N"])
    assert result["ORA_N"] >= 1  # C2 finds something in the NMF topics at 0.05


def test_options_are_recorded_and_hashed(result, outputs, c2):
    options = result.config["options"]
    assert options["ora_background"] == "gene_sets" and options["ora_alpha"] == 0.05
    assert options["gsea_n_perm"] == 300 and options["gsea_engine"] == "native"
    assert options["gsea_min_size"] == 15 and options["gsea_max_size"] == 500
    assert "n_jobs" not in options and result.config["runtime"] == {
        "n_jobs": 1, "gsea_device": "cpu", "cluster_knn_recall_cells": 1000, "cluster_n_jobs": None}
    threaded = quiet(evaluate, outputs, c2, metrics="ora,gsea", gsea_n_perm=300, ora_alpha=0.05,
                     seed=3, n_jobs=2)
    assert threaded.config["config_sha256"] == result.config["config_sha256"]
    pd.testing.assert_frame_equal(threaded.details["gsea"], result.details["gsea"])
    other = quiet(evaluate, outputs, c2, metrics="ora", ora_background="vocabulary")
    assert other.config["config_sha256"] != result.config["config_sha256"]
    assert set(other.details) == {"ora"}


def test_enrichment_is_asked_for_by_name(outputs, reactome):
    plain = quiet(evaluate, outputs, reactome)
    assert "ORA_N" not in plain.scores and plain.details == {}
    assert "ora" not in DEFAULT_METRICS and "gsea" not in DEFAULT_METRICS
    assert {"ora", "gsea"} <= set(METRICS)


@pytest.mark.parametrize("options, message", [
    ({"ora_background": "genome"}, "ora_background must be one of gene_sets, vocabulary"),
    ({"ora_bh_scope": "everything"}, "ora_bh_scope must be one of"),
    ({"gsea_engine": "fgsea"}, "gsea_engine must be one of native, gseapy, blitzgsea"),
    ({"gsea_rank_by": "rank"}, "gsea_rank_by must be one of"),
    ({"gsea_n_perm": 0}, "gsea_n_perm must be at least 1"),
    ({"ora_alpha": 0}, "ora_alpha must be a number in"),
    ({"gsea_min_size": 50, "gsea_max_size": 10}, "larger than gsea_max_size"),
    ({"n_jobs": 0}, "n_jobs must be a non-zero"),
])
def test_bad_options_fail_before_any_work(outputs, options, message):
    with pytest.raises(InputError, match=message):
        evaluate(outputs, "reactome", metrics="ora,gsea", **options)


def test_write_details(result, tmp_path):
    written = result.write_details(tmp_path / "details")
    assert sorted(p.name for p in written) == ["gsea.csv", "ora.csv"]
    assert sorted(p.name for p in (tmp_path / "details").iterdir()) == ["gsea.csv", "ora.csv"]  # no temp files
    ora = pd.read_csv(tmp_path / "details" / "ora.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(ora, result.details["ora"], check_dtype=False)
    gsea = pd.read_csv(tmp_path / "details" / "gsea.csv", keep_default_na=False, float_precision="round_trip")
    assert list(gsea.columns) == list(GSEA_COLUMNS) and len(gsea) == len(result.details["gsea"])
    np.testing.assert_array_equal(gsea["es"], result.details["gsea"]["es"])  # round-trip exact
    assert np.isfinite(gsea[["es", "nes", "pval", "fdr"]].to_numpy()).all()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        result.write_details(tmp_path / "file")


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_enrichment_and_details(tmp_path, capsys, shared_data):
    gmt = shared_data / "gene_sets" / "c2.all.v7.1.symbols.gmt"
    argv = ["score", "--example", "yan_nmf", "--gene-sets", gmt, "--metrics", "td,ora,gsea",
            "--ora-background", "vocabulary", "--alpha", "0.05", "--n-perm", "200", "--seed", "7",
            "--gsea-fdr", "0.25", "--details", tmp_path / "d", "--out", tmp_path / "r.json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert {"TD", "ORA_N", "ORA_U", "ORA_Q", "GSEA_N", "GSEA_U", "GSEA_Q"} <= set(data)
    options = data["config"]["options"]
    assert (options["ora_background"], options["ora_alpha"], options["gsea_n_perm"],
            options["gsea_fdr"], options["seed"]) == ("vocabulary", 0.05, 200, 0.25, 7)
    assert "ORA_N" in data["per_topic"][0] and "GSEA_N" in data["per_topic"][0]
    ora = pd.read_csv(tmp_path / "d" / "ora.csv")
    gsea = pd.read_csv(tmp_path / "d" / "gsea.csv")
    assert list(ora.columns) == list(ORA_COLUMNS) and list(gsea.columns) == list(GSEA_COLUMNS)
    assert "ora.csv" in out and "gsea.csv" in out
    first = (tmp_path / "d" / "gsea.csv").read_bytes()
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert (tmp_path / "d" / "gsea.csv").read_bytes() == first  # same seed, same bytes


def test_cli_enrichment_errors(tmp_path, capsys):
    code, _, err = run(["score", "--example", "yan_nmf", "--metrics", "ora", "--ora-background", "genome"], capsys)
    assert code == 2 and "invalid choice" in err
    code, _, err = run(["score", "--example", "yan_nmf", "--metrics", "gsea", "--n-perm", "0"], capsys)
    assert code == 2 and "gsea_n_perm must be at least 1" in err and "Traceback" not in err
    code, _, err = run(["score", "--example", "yan_nmf", "--metrics", "td", "--details", tmp_path], capsys)
    assert code == 0 and "no metric with a detail table" in err
