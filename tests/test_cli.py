"""The ``topiceval score`` command: outputs, options and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from topiceval.cli import main
from topiceval.examples import EXAMPLES
from topiceval.io import read_matrix

EX = EXAMPLES["yan_nmf"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def example_files(tmp_path_factory):
    """The shipped example rewritten in other accepted formats."""
    folder = tmp_path_factory.mktemp("files")
    beta, _, genes = read_matrix(EX.topic_gene)
    theta = read_matrix(EX.cell_topic)[0]
    np.savetxt(folder / "beta_noheader.csv", beta, delimiter=",")
    np.save(folder / "beta.npy", beta)
    np.save(folder / "theta.npy", theta)
    (folder / "genes.json").write_text(json.dumps(genes))
    (folder / "genes.txt").write_text("\n".join(genes) + "\n")
    labels = EX.labels.read_text().split()
    pd.DataFrame({"stage": labels}).to_csv(folder / "anno.csv", index=False)
    return folder, genes


def test_example_run(tmp_path, capsys):
    code, out, err = run(["score", "--example", "yan_nmf", "--out", tmp_path / "r.json"], capsys)
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) == {"TC", "TD", "TQ", "IP", "config", "per_topic"}
    assert "TC" in out and f"{data['TC']:.4f}" in out
    assert "warning: only 2012 of 4656 model genes (43%) appear in reactome" in err
    assert "Traceback" not in err


def test_other_file_formats_give_the_same_numbers(tmp_path, capsys, example_files):
    folder, _ = example_files
    code, _, _ = run(["score", "--example", "yan_nmf", "--out", tmp_path / "a.json"], capsys)
    assert code == 0
    reference = json.loads((tmp_path / "a.json").read_text())
    for beta, genes, theta in [
        ("beta_noheader.csv", "genes.json", EX.cell_topic),
        ("beta.npy", "genes.txt", folder / "theta.npy"),
    ]:
        argv = ["score", "--topic-gene", folder / beta, "--genes", folder / genes,
                "--cell-topic", theta, "--labels", f"{folder / 'anno.csv'}:stage",
                "--gene-sets", "reactome", "--metrics", "tc,td,tq,ip", "--out", tmp_path / "b.json"]
        code, _, err = run(argv, capsys)
        assert code == 0, err
        other = json.loads((tmp_path / "b.json").read_text())
        for key in ("TC", "TD", "TQ", "IP"):
            assert other[key] == reference[key]


def test_options_reach_the_result(tmp_path, capsys, shared_data):
    gmt = shared_data / "gene_sets" / "c2.all.v7.1.symbols.gmt"
    argv = ["score", "--example", "yan_nmf", "--gene-sets", gmt, "--metrics", "tc,td",
            "--top-n", "5", "--tc-zero-cooccurrence", "-1", "--td-method", "exclusive",
            "--out", tmp_path / "r.json"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) == {"TC", "TD", "config", "per_topic"}
    options = {"top_n": 5, "tc_zero_cooccurrence": -1.0, "td_method": "exclusive", "seed": 0}
    assert {key: data["config"]["options"][key] for key in options} == options
    assert data["config"]["gene_sets"]["source"] == "c2.all.v7.1.symbols.gmt"
    assert len(data["per_topic"][0]["top_genes"]) == 5


def test_json_to_stdout_without_out(capsys):
    code, out, _ = run(["score", "--example", "yan_nmf", "--metrics", "td"], capsys)
    assert code == 0
    assert set(json.loads(out)) == {"TD", "config", "per_topic"}


def bad_files(tmp_path):
    beta = np.random.default_rng(0).random((3, 12))
    np.savetxt(tmp_path / "beta.csv", beta, delimiter=",")
    nan = beta.copy()
    nan[0, 0] = np.nan
    np.savetxt(tmp_path / "nan.csv", nan, delimiter=",")
    genes = [f"G{i}" for i in range(12)]
    (tmp_path / "genes.txt").write_text("\n".join(genes))
    (tmp_path / "genes11.txt").write_text("\n".join(genes[:11]))
    (tmp_path / "dupes.txt").write_text("\n".join(genes[:10] + ["G0", "G1"]))
    np.savetxt(tmp_path / "theta.csv", np.ones((4, 3)), delimiter=",")
    (tmp_path / "labels.txt").write_text("x\ny\nz\n")
    (tmp_path / "bad.gmt").write_text("S1\t\tG1\tG2\nS1\t\tG3\n")
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--topic-gene", "missing.csv", "--genes", "genes.txt"], "topic-gene matrix file not found"),
        (["--topic-gene", "beta.csv", "--genes", "genes11.txt"], "11 gene names were given but the topic-gene matrix has 12"),
        (["--topic-gene", "beta.csv", "--genes", "dupes.txt"], r"occur more than once: G0 \(x2\), G1 \(x2\)"),
        (["--topic-gene", "nan.csv", "--genes", "genes.txt"], "topic-gene matrix holds 1 NaN"),
        (["--topic-gene", "beta.csv", "--genes", "genes.txt", "--gene-sets", "bad.gmt"], "line 2: duplicate gene-set name 'S1'"),
        (["--topic-gene", "beta.csv", "--genes", "genes.txt", "--gene-sets", "nope.gmt"], "no such file, and not a shipped collection"),
        (["--topic-gene", "beta.csv", "--genes", "genes.txt", "--metrics", "tc,xyz"], "unknown metric"),
        (["--topic-gene", "beta.csv", "--genes", "genes.txt", "--top-n", "13"], "top_n = 13 is larger than the number of genes"),
        (["--topic-gene", "beta.csv", "--genes", "genes.txt", "--cell-topic", "theta.csv", "--labels", "labels.txt"], "3 labels were given for 4 cells"),
        (["--topic-gene", "beta.csv"], "no header of gene names"),
        ([], "give --topic-gene"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(bad_files(tmp_path))
    code, out, err = run(["score", *extra, "--out", "r.json"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("topiceval: error: ")
    assert re.search(message, lines[-1]), lines[-1]
    assert "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_unwritable_output_leaves_nothing(tmp_path, capsys):
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the JSON should go: the final rename fails
    code, _, err = run(["score", "--example", "yan_nmf", "--metrics", "td", "--out", target], capsys)
    assert code == 2 and "topiceval: error:" in err
    assert list(tmp_path.iterdir()) == [target] and list(target.iterdir()) == []


def test_console_entry_point(tmp_path):
    """The installed ``topiceval`` command (a subprocess, as a user runs it)."""
    ok = subprocess.run(
        [sys.executable, "-m", "topiceval", "score", "--example", "yan_nmf", "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "topiceval", "score", "--topic-gene", str(tmp_path / "none.npy")],
        capture_output=True, text=True, check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"topiceval: error: topic-gene matrix file not found: {tmp_path / 'none.npy'}"
