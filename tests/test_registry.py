"""One declaration per option: the metric registry reaches the API, the CLI and the TOML alike;
AnnData in and out; scoring an embedding alone; skipped defaults are reported; the README runs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

import topiceval as te
from topiceval.cli import build_parser, main
from topiceval.errors import InputError
from topiceval.evaluate import EvaluationOptions
from topiceval.examples import EXAMPLES
from topiceval.io import read_labels, read_matrix
from topiceval.leaderboard import config as lconfig
from topiceval.leaderboard import report, runner
from topiceval.metrics import _family, clustering_scores, interpretation_purity, topic_diversity
from topiceval.metrics.registry import FAMILIES, METRIC_ALIASES, METRICS, option_specs_all

ROOT = Path(__file__).resolve().parents[1]
EX = EXAMPLES["yan_nmf"]


def _score_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["score"]


def _cli_text(spec) -> str:
    if spec.kind == "bool_or_none":
        return {None: "auto", True: "yes", False: "no"}[spec.default]
    if spec.name == "cluster_resolutions":
        return "0:2:0.1"
    return str(spec.default)


# --------------------------------------------------------------------------- one declaration
def test_every_option_is_reachable_with_one_name_and_default_from_api_cli_and_toml():
    specs = option_specs_all()
    names = [s.name for s in specs]
    assert len(names) == len(set(names)) == 29  # 21 of 0.1, gsea_device, n_boot, ci_level, rare_type_threshold,
    # cluster_asw_max_cells, cluster_knn_recall_cells, cluster_n_jobs, cluster_backend
    api = {f.name: f.default for f in dataclasses.fields(EvaluationOptions)}
    assert api == {s.name: s.default for s in specs}
    defaults = EvaluationOptions()
    flags = {a.dest: a for a in _score_parser()._actions
             if a.option_strings and type(a).__name__ != "_DeprecatedAlias"}
    toml_defaults = {}
    for spec in specs:
        # API: evaluate() keyword and EvaluationOptions field, same default.
        assert getattr(defaults, spec.name) == spec.default
        # CLI: --name-with-dashes, parsing the default's text gives the default value.
        action = flags[spec.name]
        assert spec.flag in action.option_strings and action.default is argparse.SUPPRESS
        parsed = _score_parser().parse_args([spec.flag, _cli_text(spec)])
        assert getattr(parsed, spec.name) == spec.default, spec.name
        assert not hasattr(_score_parser().parse_args([]), spec.name)  # unset: the one default applies
        if spec.choices:
            assert list(action.choices) == list(spec.choices)
        toml_defaults[spec.name] = list(spec.default) if isinstance(spec.default, tuple) else spec.default
    # TOML: every option is a valid [evaluation] key with the same default.
    toml_defaults = {k: v for k, v in toml_defaults.items() if v is not None}  # TOML has no null
    config = lconfig.load_config({"datasets": ["pollen_hvg5000"], "train": {"models": ["nmf"]},
                                  "collections": [{"name": "h", "human": "hallmark"}],
                                  "evaluation": toml_defaults})
    options = EvaluationOptions.from_kwargs(dict(config.evaluation))
    assert dataclasses.asdict(options) == dataclasses.asdict(defaults)
    with pytest.raises(InputError, match="unknown option.*ora_alpah.*valid"):
        lconfig.load_config({"datasets": ["pollen_hvg5000"], "train": {"models": ["nmf"]},
                             "collections": [{"name": "h", "human": "hallmark"}], "evaluation": {"ora_alpah": 0.1}})
    # The documentation's options table (docs/options.md, moved from the README) lists every option.
    table = (ROOT / "docs" / "options.md").read_text()
    for spec in specs:
        assert f"`{spec.name}`" in table, spec.name


def test_each_family_validates_its_options_once_and_the_report_reads_its_keys():
    for family in FAMILIES:
        assert family.keys and set(family.main) <= set(family.keys) and set(family.rank_by) <= set(family.keys)
        for alias in family.aliases:
            assert METRIC_ALIASES[alias] == family.name
    assert report.METRIC_ORDER == tuple(k for f in FAMILIES for k in f.keys)
    assert report.MAIN_METRICS == ("TC", "TD", "TQ", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI")
    assert lconfig.RANK_BY == ("TQ", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI")
    # The family's dataclass is the one check: the metric function and EvaluationOptions agree.
    with pytest.raises(InputError, match="gsea_min_size \\(50\\) is larger than gsea_max_size \\(10\\)"):
        EvaluationOptions(gsea_min_size=50, gsea_max_size=10)
    with pytest.raises(InputError, match="gsea_min_size \\(50\\) is larger than gsea_max_size \\(10\\)"):
        te.topic_gsea(np.eye(3), ["A", "B", "C"], te.GeneSets.from_dict({"S": ["A"]}), min_size=50, max_size=10)
    opts = EvaluationOptions(ora_alpha=0.05, top_n=7)
    assert opts.for_family("ora") == METRICS["ora"].options(top_n=7, ora_alpha=0.05)
    assert opts.for_family("tq") is None
    assert "n_jobs" not in opts.hashed() and opts.runtime() == {"n_jobs": 1, "gsea_device": "cpu",
                                                                "cluster_knn_recall_cells": 1000, "cluster_n_jobs": None}


def test_hashed_at_default_keeps_old_hashes():
    @dataclasses.dataclass(frozen=True)
    class Later(_family.Options):
        later_knob: int = _family.option(3, "added after the baselines", kind="int", low=1,
                                         hashed_at_default=False)

    spec = _family.option_specs(Later)[0]
    assert not spec.hashed_at_default and spec.flag == "--later-knob"
    with pytest.raises(InputError, match="later_knob must be at least 1"):
        Later(later_knob=0)


def test_old_cli_spellings_warn_and_still_work(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["score", "--example", "yan_nmf", "--metrics", "ora", "--alpha", "0.2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "--alpha is deprecated" in err and "--ora-alpha" in err
    assert json.loads(out.read_text())["config"]["options"]["ora_alpha"] == 0.2
    code = main(["score", "--example", "yan_nmf", "--metrics", "ora", "--ora-alpha", "0.2", "--out", str(out)])
    assert code == 0 and "deprecated" not in capsys.readouterr().err


# --------------------------------------------------------------------------- leaderboard aliases
@pytest.fixture(scope="module")
def tiny_h5ad(tmp_path_factory) -> Path:
    adata = te.datasets.synthetic(n_cells=120, n_cell_types=4, n_topics=4, n_background_genes=100, seed=0)
    adata.obs = adata.obs[["cell_type"]]
    del adata.obsm["true_cell_topic"]
    del adata.varm["true_topic_gene"]
    adata.uns = {}
    path = tmp_path_factory.mktemp("tiny") / "tiny.h5ad"
    adata.write_h5ad(path)
    return path


def test_toml_ari_alias_resolves_like_the_runner_and_is_skipped_without_igraph(tiny_h5ad, tmp_path, monkeypatch):
    raw = {"seeds": [0], "datasets": [{"name": "tiny", "path": str(tiny_h5ad), "label_key": "cell_type",
                                       "species": "human", "values": "counts"}],
           "preprocess": {"n_top_genes": 300}, "train": {"models": ["nmf"], "n_topics": 4},
           "models": {"nmf": {"epochs": 40}},
           "collections": [{"name": "hallmark", "human": "hallmark", "metrics": ["td", "ARI", "nmi"]}],
           "run": {"backend": "sequential"}}
    config = lconfig.load_config(raw)
    assert config.collections[0].metrics == ("td", "clustering")
    real = _family.module_available
    monkeypatch.setattr(_family, "module_available", lambda name: False if name == "igraph" else real(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = runner.run(config, cache=tmp_path / "cache", progress=False)
    assert list(results.cells["status"]) == ["done"]
    assert set(results.scores["metric"]) == {"TD"}
    assert any("python-igraph is not installed" in note for note in results.config["notes_run"])
    with pytest.raises(InputError, match="unknown metric.*'rand'.*valid: .*ari, nmi"):
        lconfig.load_config({**raw, "collections": [{"name": "h", "human": "hallmark", "metrics": ["rand"]}]})


# --------------------------------------------------------------------------- AnnData and embeddings
@pytest.fixture(scope="module")
def example():
    beta, _, genes = read_matrix(EX.topic_gene)
    theta = read_matrix(EX.cell_topic)[0]
    labels = read_labels(EX.labels)
    return beta, np.asarray(genes, dtype=object), theta, labels


def _adata(example, **layers) -> anndata.AnnData:
    beta, genes, theta, labels = example
    adata = anndata.AnnData(obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(len(labels))]),
                            var=pd.DataFrame(index=genes))
    for where, key, value in layers.values():
        getattr(adata, where)[key] = value
    return adata


def test_from_anndata_defaults_follow_topicevals_and_sce2tms_keys(example):
    beta, genes, theta, labels = example
    sce2tm = _adata(example, tg=("varm", "sce2tm_topic_gene", beta.T), ct=("obsm", "X_sce2tm_topic", theta),
                    mu=("obsm", "X_sce2tm", np.log(theta + 1e-3)))
    outputs = te.TopicOutputs.from_anndata(sce2tm)
    np.testing.assert_array_equal(outputs.topic_gene, beta)
    np.testing.assert_array_equal(outputs.cell_topic, theta)
    assert outputs.cell_embedding is not None and outputs.metadata["layout"].startswith("scE2TM")
    own = _adata(example, tg=("varm", "topic_gene", beta.T), ct=("obsm", "X_topic", theta))
    assert te.TopicOutputs.from_anndata(own).metadata["layout"].startswith("topiceval")
    # evaluate(adata) reads it all, labels from obs by name, the same numbers as the functions.
    result = te.evaluate(sce2tm, labels="cell_type", metrics="td,ip")
    assert result["TD"] == topic_diversity(beta).score
    assert result["IP"] == interpretation_purity(theta, labels).score
    with pytest.raises(InputError, match="adata.obsm has no 'X_missing'"):
        te.evaluate(own, cell_topic_key="X_missing", labels="cell_type", metrics="ip")
    with pytest.raises(InputError, match="holds no topic-model outputs"):
        te.TopicOutputs.from_anndata(_adata(example))


def test_an_embedding_alone_is_scored_from_adata_and_cli(example, tmp_path, capsys):
    _, _, theta, labels = example
    embedding = np.log(theta + 1e-3)
    adata = _adata(example, emb=("obsm", "X_scGPT", embedding))
    result = te.evaluate(adata, embedding_key="X_scGPT", labels="cell_type", metrics="ari,nmi",
                         cluster_resolutions=[0.5, 1.0])
    direct = clustering_scores(embedding, labels, [0.5, 1.0])
    assert result.scores.to_dict() == pytest.approx(direct.scores.to_dict())
    assert result.config["model"]["n_genes"] is None and result.per_topic.empty
    with pytest.raises(InputError, match="no default metric can run"):
        te.evaluate(adata, embedding_key="X_scGPT", labels="cell_type")
    path = tmp_path / "emb.npy"
    np.save(path, embedding)
    out = tmp_path / "r.json"
    code = main(["score", "--cell-embedding", str(path), "--labels", str(EX.labels), "--metrics", "ari,nmi",
                 "--cluster-resolutions", "0.5,1.0", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    data = json.loads(out.read_text())
    assert data["ARI"] == pytest.approx(direct["ARI"]) and data["NMI"] == pytest.approx(direct["NMI"])
    assert "cell representation only" in printed.out


def test_skipped_defaults_are_listed_and_printed(example, capsys):
    beta, genes, theta, labels = example
    result = te.evaluate(te.TopicOutputs(beta, genes, cell_topic=theta))
    assert list(result.scores.index) == ["TD"]
    assert set(result.skipped) == {"tc", "tq", "ip"}
    assert "gene sets" in result.skipped["tc"] and "cell labels" in result.skipped["ip"]
    assert "tc skipped" in repr(result)
    code = main(["score", "--topic-gene", str(EX.topic_gene), "--cell-topic", str(EX.cell_topic)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("skipped:")]
    assert code == 0 and len(lines) == 1 and "tc needs gene sets" in lines[0] and "ip needs cell labels" in lines[0]
    assert te.evaluate(te.TopicOutputs(beta, genes, cell_topic=theta), labels=labels, metrics="td").skipped == {}


def test_to_uns_keeps_dataframes_and_reads_back_after_h5ad(example, tmp_path):
    beta, genes, theta, labels = example
    adata = _adata(example, tg=("varm", "topic_gene", beta.T), ct=("obsm", "X_topic", theta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = te.evaluate(adata, gene_sets="reactome", labels="cell_type", metrics="tc,td,ip,ora",
                             ora_alpha=0.2)
    result.to_uns(adata)
    assert isinstance(adata.uns["topiceval"]["per_topic"], pd.DataFrame)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = anndata.read_h5ad(tmp_path / "a.h5ad")
    ora = te.get_table(back, "ora")
    pd.testing.assert_frame_equal(ora, result.details["ora"], check_dtype=False)
    assert te.get_table(back, "scores").set_index("metric")["value"].to_dict() == pytest.approx(result.scores.to_dict())
    again = te.Evaluation.from_uns(back)
    assert again.scores.equals(result.scores) and again.config == json.loads(json.dumps(result.config, default=str))
    assert again.per_topic["top_genes"].tolist() == result.per_topic["top_genes"].tolist()
    np.testing.assert_allclose(again.per_topic["TC"], result.per_topic["TC"])
    with pytest.raises(InputError, match="no table 'gsea'"):
        te.get_table(back, "gsea")


# --------------------------------------------------------------------------- the README
def _readme_blocks() -> list[str]:
    # The README's example, then the AnnData example of docs/python.md (moved from the README).
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "python.md").read_text()
    return re.findall(r"<!-- readme-example[^>]*-->\n```python\n(.*?)```", text, flags=re.S)


def test_the_readme_python_examples_run_as_written(tiny_h5ad, tmp_path, monkeypatch, capsys):
    blocks = _readme_blocks()
    assert len(blocks) == 2 and 'te.read_outputs("run/outputs.h5ad")' in blocks[0]
    assert main(["train", "nmf", "--data", str(tiny_h5ad), "--out", str(tmp_path / "run"), "--topics", "4",
                 "--label-key", "cell_type", "--preprocess", "300"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    first: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(blocks[0], "README.md", "exec"), first)  # noqa: S102 - the project's own README
        assert list(first["result"].scores.index) == ["TC", "TD", "TQ", "IP"] and first["result"].skipped == {}
        assert (tmp_path / "result.json").is_file()
        second: dict = {}
        exec(compile(blocks[1], "README.md", "exec"), second)  # noqa: S102
    assert set(second["result"].scores.index) == {"TC", "TD", "TQ", "IP"}
    assert {"ARI", "NMI"} <= set(second["embedding"].scores.index)
    assert "topiceval" in second["adata"].uns
    assert os.path.exists("run/outputs.h5ad")
