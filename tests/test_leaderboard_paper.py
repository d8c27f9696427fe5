"""The paper-setting leaderboard's pieces: clustering-only rows (scVI, a precomputed scGPT embedding),
reports from cached cells only, and the comparison with the paper's claims."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from topiceval.adapters import embedding, registry, scvi_latent
from topiceval.adapters.registry import TrainParams

import topiceval as te
from topiceval import datasets
from topiceval.errors import InputError
from topiceval.leaderboard import config as lconfig
from topiceval.leaderboard import report, runner

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def pollen():
    """The shipped real dataset (Pollen, 5000 HVG), cut to 1000 HVG."""
    return datasets.preprocess(datasets.load_default(), n_top_genes=1000)


# --------------------------------------------------------------------------- scVI
SCVI_PARAMS = TrainParams(n_topics=6, epochs=5, seed=3, options={"n_hidden": 32})


@pytest.fixture(scope="module")
def scvi_trained(pollen):
    return scvi_latent.train(pollen, SCVI_PARAMS)


def test_scvi_is_an_embedding_alone_equal_to_scvi_tools_called_directly(scvi_trained, pollen, tmp_path,
                                                                       monkeypatch):
    import scvi

    out = scvi_trained.outputs
    assert out.topic_gene is None and out.cell_topic is None and out.gene_names is None
    assert out.cell_embedding.shape == (pollen.n_obs, 6)
    # the saved model, reloaded by scvi-tools, gives the same latent means
    monkeypatch.chdir(tmp_path)
    scvi_trained.save(tmp_path / "model")
    counts = anndata.AnnData(X=sp.csr_matrix(pollen.layers["counts"], dtype=np.float32))
    counts.obs_names = [str(i) for i in range(pollen.n_obs)]
    counts.var_names = list(pollen.var_names)
    model = scvi.model.SCVI.load(str(tmp_path / "model"), adata=counts, accelerator="cpu")
    assert model.module.n_latent == 6 and model.module.gene_likelihood == "zinb"
    np.testing.assert_allclose(out.cell_embedding, model.get_latent_representation(), rtol=1e-5, atol=1e-6)
    # same seed, same numbers; another seed, other numbers
    np.testing.assert_array_equal(scvi_latent.train(pollen, SCVI_PARAMS).outputs.cell_embedding, out.cell_embedding)
    other = scvi_latent.train(pollen, TrainParams(n_topics=6, epochs=5, seed=4, options={"n_hidden": 32}))
    assert not np.allclose(other.outputs.cell_embedding, out.cell_embedding)
    # scored on clustering alone, like any embedding
    labels = pollen.obs["cell_type"].astype(str).to_numpy()
    result = te.evaluate(out, labels=labels, metrics="ari,nmi", cluster_resolutions=(0.5, 1.0))
    assert 0 < result.scores["ARI"] <= 1 and 0 < result.scores["NMI"] <= 1
    with pytest.raises(InputError, match="needs a topic-gene matrix"):
        te.evaluate(out, labels=labels, metrics="tc", gene_sets="hallmark")


# --------------------------------------------------------------------------- precomputed embedding
def test_precomputed_embedding_is_the_obsm_matrix(tmp_path):
    wang = datasets.load_dataset("wang")  # 457 cells x 0 genes, scGPT zero-shot embedding in obsm
    result = embedding.train(wang, TrainParams(seed=5))
    np.testing.assert_array_equal(result.outputs.cell_embedding, np.asarray(wang.obsm["X_scgpt"], dtype=np.float64))
    assert result.outputs.name == "scgpt" and result.hyperparameters["dim"] == 512
    with pytest.raises(InputError, match=r"no precomputed cell embedding .*obsm\['X_other'\]"):
        embedding.train(wang, TrainParams(embedding_key="X_other"))
    # through the registry: an outputs.h5ad of the embedding alone, read back as written
    wang.write_h5ad(tmp_path / "wang.h5ad")
    lines = []
    run = registry.train("scgpt", tmp_path / "wang.h5ad", tmp_path / "run",
                         params=TrainParams(label_key="cell_type"), log=lines.append)
    assert lines == ["scgpt: reads the precomputed cell embedding in obsm; nothing is trained"]
    from topiceval.io import read_outputs_h5ad

    with pytest.raises(InputError, match="holds no topic-model outputs"):
        read_outputs_h5ad(run / registry.OUTPUTS_FILE)
    back = read_outputs_h5ad(run / registry.OUTPUTS_FILE, require_topic_gene=False)
    np.testing.assert_array_equal(back.cell_embedding, result.outputs.cell_embedding)
    assert back.topic_gene is None and list(back.obs["cell_type"]) == list(wang.obs["cell_type"].astype(str))


# --------------------------------------------------------------------------- leaderboard rows
@pytest.fixture(scope="module")
def mixed_results(tmp_path_factory):
    """nmf (a topic model), scvi and scgpt (clustering only) on ting and wang, two seeds."""
    raw = {"name": "mixed", "datasets": ["wang", "ting"], "seeds": [0, 1],
           "train": {"models": ["nmf", "scvi", "scgpt"], "n_topics": 6},
           "models": {"nmf": {"epochs": 40}, "scvi": {"epochs": 5, "options": {"n_hidden": 32}}},
           "preprocess": {"n_top_genes": 1000},
           "collections": [{"name": "h", "human": "hallmark", "mouse": "mouse_hallmark",
                            "metrics": ["tc", "td", "tq", "ip", "clustering"]},
                           {"name": "tc_only", "human": "hallmark", "mouse": "mouse_hallmark", "metrics": ["tc"]}],
           "evaluation": {"cluster_resolutions": [0.5, 1.0]}}
    root = tmp_path_factory.mktemp("mixed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = runner.run(lconfig.load_config(raw), cache=root / "cache", backend="sequential", progress=False)
    return {"results": results, "raw": raw, "root": root}


def test_clustering_only_rows_are_scored_on_clustering_alone(mixed_results):
    results = mixed_results["results"]
    cells = results.cells.set_index(["dataset", "model", "seed"])
    assert cells.loc[("wang", "scgpt", 0), "status"] == "done"  # the embedding of a dataset without expression
    assert cells.loc[("wang", "nmf", 0), "status"] == "skipped" and cells.loc[("wang", "scvi", 0), "status"] == "skipped"
    assert cells.loc[("ting", "scgpt", 0), "status"] == "skipped"
    assert cells.loc[("ting", "scgpt", 0), "reason"].startswith("no precomputed cell embedding")
    assert cells.loc[("ting", "scvi", 1), "status"] == "done"
    assert results.config["clustering_only"] == ["scvi", "scgpt"]
    scores = results.scores
    only = scores[scores["model"].isin(["scvi", "scgpt"])]
    assert set(only["collection"]) == {"h"}  # tc_only asks for no clustering metric: not scored
    assert set(only["metric"]) == {"ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"}
    assert not (results.stability["model"].isin(["scvi", "scgpt"])).any()
    # scGPT's ARI is evaluate()'s on the embedding of the dataset, computed independently
    wang = datasets.load_dataset("wang")
    expected = te.evaluate(te.TopicOutputs(topic_gene=None, cell_embedding=np.asarray(wang.obsm["X_scgpt"])),
                           labels=wang.obs["cell_type"].astype(str).to_numpy(), metrics="clustering",
                           cluster_resolutions=(0.5, 1.0))
    got = only[(only["model"] == "scgpt") & (only["seed"] == 0)].set_index("metric")["value"]
    assert got["ARI"] == pytest.approx(expected.scores["ARI"], rel=1e-12)
    assert got["NMI"] == pytest.approx(expected.scores["NMI"], rel=1e-12)


def test_report_keeps_clustering_only_rows_out_of_the_ranked_tables(mixed_results, tmp_path):
    results = mixed_results["results"]
    assert list(report.ranked_table(results, "ting", "h").index) == ["nmf"]
    assert report.ranked_table(results, "wang", "h").empty
    assert list(report.overall_ranking(results, "h").index) == ["nmf"]
    table = report.clustering_table(results, "ting")
    assert set(table.index) == {"nmf", "scvi"}
    assert table.loc["scvi", "kind"] == "clustering only" and table.loc["nmf", "kind"] == "topic model"
    summary = results.summary().set_index(["dataset", "collection", "model", "metric"])
    assert table.loc["scvi", "ARI"] == summary.loc[("ting", "h", "scvi", "ARI"), "mean"]
    markdown = report.write_report(results, tmp_path, plots=False)["markdown"].read_text()
    section = markdown.split("## Clustering-only rows", 1)[1].split("\n## ", 1)[0]
    assert "kept out of the ranked tables" in section and "| scgpt | clustering only |" in section and "| scvi | clustering only |" in section
    ranked = markdown.split("## Results per dataset", 1)[1].split("## Clustering-only rows", 1)[0]
    assert "scvi" not in ranked and "scgpt" not in ranked
    # which implementation ran, and the measured time of each model (fit + scoring, summed over cells)
    import sklearn

    assert (f"| nmf | NMF (scikit-learn, KL divergence) on counts: fast, deterministic baseline; scikit-learn "
            f"{sklearn.__version__} | 6 | 40 |") in markdown
    cells = results.cells[(results.cells["model"] == "nmf") & (results.cells["status"] == "done")]
    assert cells["score_s"].notna().all() and (cells["score_s"] > 0).all()
    total = cells["train_s"].sum() + cells["score_s"].sum()
    assert (f"| nmf | 2 | {cells['train_s'].sum():.0f} | {cells['score_s'].sum():.0f} | {total:.0f} | "
            f"{total / 2:.0f} |") in markdown
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    with_scvi = comparisons[(comparisons["model_a"] == "scvi") | (comparisons["model_b"] == "scvi")]
    assert set(with_scvi.dropna(subset=["pvalue"])["metric"]) <= {"ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"}


# --------------------------------------------------------------------------- reports from cached cells only
def test_cached_only_reports_the_finished_cells_and_lists_the_rest(mixed_results, tmp_path, monkeypatch, capsys):
    """A second process reads what the first one finished (two of three seeds), trains and scores nothing."""
    import json
    import shutil

    from topiceval.cli import main

    raw = {**mixed_results["raw"], "seeds": [0, 1, 2]}
    cache = tmp_path / "cache"
    shutil.copytree(mixed_results["root"] / "cache", cache)
    # nmf's tc_only scores are lost, as for cells between training and scoring
    for folder in (cache / "scores").iterdir():
        record = json.loads((folder / "evaluation.json").read_text())["config"]
        if record["model"]["name"] == "nmf" and record["metrics"] == ["tc"]:
            shutil.rmtree(folder)

    real_train, real_score = registry.train, runner._score

    def only_stored_embeddings(train):
        def guarded(*args, **kwargs):
            model = args[0] if train else args[0].model.name
            if model != "scgpt":
                raise AssertionError(f"a cache-only run trained or scored {model}")
            return (real_train if train else real_score)(*args, **kwargs)
        return guarded

    monkeypatch.setattr(registry, "train", only_stored_embeddings(True))
    monkeypatch.setattr(runner, "_score", only_stored_embeddings(False))
    config = lconfig.load_config(raw)
    results = runner.run(config, cache=cache, backend="sequential", progress=False, cached_only=True)
    cells = results.cells.set_index(["dataset", "model", "seed"])
    status = cells["status"].to_dict()
    assert [k for k, v in status.items() if v == "done"] == [("ting", "scvi", 0), ("ting", "scvi", 1),
                                                            ("wang", "scgpt", 0), ("wang", "scgpt", 1),
                                                            ("wang", "scgpt", 2)]  # scgpt trains nothing: read
    for seed in (0, 1):
        assert cells.loc[("ting", "nmf", seed), "status"] == runner.MISSING
        assert cells.loc[("ting", "nmf", seed), "reason"] == "not in the cache: trained, not yet scored on tc_only"
    for cell in (("ting", "nmf", 2), ("ting", "scvi", 2)):
        assert cells.loc[cell, "status"] == runner.MISSING
        assert cells.loc[cell, "reason"].startswith("not in the cache: not trained yet (being trained, or failed")
    assert cells.loc[("ting", "scgpt", 2), "status"] == "skipped"  # skips are decided as in a full run
    # the scoring time of a cached score is read from its timing record, as measured when computed
    first = mixed_results["results"].cells.set_index(["dataset", "model", "seed"])
    assert np.isfinite(first.loc[("ting", "scvi", 0), "score_s"]) and first.loc[("ting", "scvi", 0), "score_s"] > 0
    assert cells.loc[("ting", "scvi", 0), "score_s"] == first.loc[("ting", "scvi", 0), "score_s"]
    assert np.isnan(cells.loc[("ting", "nmf", 2), "score_s"])
    # the numbers of the finished cells are those of the run that computed them
    before = mixed_results["results"].scores
    shared = results.scores.merge(before, on=["dataset", "model", "seed", "collection", "metric"], suffixes=("", "_run"))
    assert len(shared) == (results.scores["seed"] < 2).sum() > 0
    np.testing.assert_array_equal(shared["value"].to_numpy(), shared["value_run"].to_numpy())
    assert results.config["cached_only"] and results.config["backend_used"] == "cache only"
    markdown = report.write_report(results, tmp_path / "report", plots=False)["markdown"].read_text()
    assert "**PARTIAL REPORT: written from the cache while the run was unfinished; 5 of 9 cells that can run are " \
           "done, 4 are missing (nmf 3, scvi 1)" in markdown
    assert "## Skipped, failed and missing" in markdown
    assert "| ting | nmf | 2 | missing | not in the cache: not trained yet (being trained, or failed" in markdown
    with pytest.raises(InputError, match="cannot be combined with refresh"):
        runner.run(config, cache=cache, progress=False, cached_only=True, refresh=True)

    # the command line: --cached-only, with the count of missing cells, its own log
    toml = tmp_path / "lb.toml"
    toml.write_text(f"""
datasets = ["wang", "ting"]
seeds = [0, 1, 2]
[preprocess]
n_top_genes = 1000
[train]
models = ["nmf", "scvi", "scgpt"]
n_topics = 6
[models.nmf]
epochs = 40
[models.scvi]
epochs = 5
options = {{ n_hidden = 32 }}
[[collections]]
name = "h"
human = "hallmark"
mouse = "mouse_hallmark"
metrics = ["tc", "td", "tq", "ip", "clustering"]
[[collections]]
name = "tc_only"
human = "hallmark"
mouse = "mouse_hallmark"
metrics = ["tc"]
[evaluation]
cluster_resolutions = [0.5, 1.0]
[output]
dir = "out"
""")
    assert lconfig.load_config(toml).sha256() == config.sha256()
    assert main(["benchmark", "--config", str(toml), "--cache", str(cache), "--cached-only", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "cells: 5 done, 9 skipped, 0 failed, 4 missing (not in the cache yet)" in printed
    assert (tmp_path / "out" / "run-cached-only.log").is_file() and not (tmp_path / "out" / "run.log").exists()


# --------------------------------------------------------------------------- the paper's claims
def _claims_results() -> runner.Results:
    """Hand-built scores on 4 datasets x 2 seeds: sce2tm leads a and b on IP everywhere, trails a on
    TQ against c2 but leads on the larger c2_c5bp, and scvi (clustering only) leads it on ARI."""
    rows = []

    def add(dataset, seed, model, collection, metric, value):
        rows.append({"dataset": dataset, "species": "human", "model": model, "seed": seed, "collection": collection,
                     "metric": metric, "value": value, "config_sha256": "x"})

    for i, dataset in enumerate(["d1", "d2", "d3", "d4"]):
        for seed in (0, 1):
            e = 0.01 * (i + 1) + 0.003 * seed  # distinct paired differences (no Wilcoxon ties)
            for model, ip, tq, tq_big, ari in (("sce2tm", 0.9 + e, 0.10, 0.20 + e, 0.70 + e),
                                               ("a", 0.8, 0.12 + e, 0.15, 0.60),
                                               ("b", 0.5, 0.05, 0.05, 0.50)):
                add(dataset, seed, model, "c2", "IP", ip)
                add(dataset, seed, model, "c2", "TQ", tq)
                add(dataset, seed, model, "c2", "ARI", ari)
                add(dataset, seed, model, "c2_c5bp", "TQ", tq_big)
            add(dataset, seed, "scvi", "c2", "ARI", 0.80 + e)
    config = {"name": "claims", "seeds": [0, 1], "models": [{"name": m} for m in ("sce2tm", "a", "b", "scvi")],
              "datasets": [{"name": d} for d in ("d1", "d2", "d3", "d4")],
              "collections": [{"name": "c2", "metrics": ["tq", "ip", "clustering"]},
                              {"name": "c2_c5bp", "metrics": ["tq"]}],
              "gene_sets": {"c2": {"human": {"n_sets": 5529}}, "c2_c5bp": {"human": {"n_sets": 13059}}},
              "clustering_only": ["scvi"], "rank_by": ["TQ", "IP", "ARI"]}
    return runner.Results(config=config, cells=pd.DataFrame(columns=runner._CELL_COLUMNS),
                          scores=pd.DataFrame(rows), per_topic=pd.DataFrame(columns=runner._TOPIC_COLUMNS),
                          pathways=pd.DataFrame(columns=runner._PATHWAY_COLUMNS))


def test_paper_claims_are_checked_against_paired_means_and_the_wilcoxon_tests(tmp_path):
    from scipy.stats import wilcoxon
    from statsmodels.stats.multitest import multipletests

    from topiceval.leaderboard import claims, statistics

    results = _claims_results()
    table = claims.paper_claims(results).set_index("label")
    # IP: ahead of a and b; the closest is a, gain = (mean sce2tm - mean a) / mean a over the 8 cells
    scores = results.scores
    ip = scores[scores["metric"] == "IP"].pivot_table(index=["dataset", "seed"], columns="model", values="value")
    assert table.loc["IP", "closest"] == "a" and table.loc["IP", "n"] == 8
    assert table.loc["IP", "gain"] == pytest.approx((ip["sce2tm"].mean() - ip["a"].mean()) / ip["a"].mean(), rel=1e-12)
    raw = [wilcoxon(ip["sce2tm"], ip[m]).pvalue for m in ("a", "b")] + [wilcoxon(ip["a"], ip["b"]).pvalue]
    assert table.loc["IP", "pvalue"] == pytest.approx(raw[0], rel=1e-12)
    assert table.loc["IP", "pvalue_holm"] == pytest.approx(multipletests(raw, method="holm")[1][0], rel=1e-12)
    assert table.loc["IP", "verdict"] == "holds"  # 8 pairs all positive: p = 2 / 2**8 < 0.05
    assert "scVI" not in table.loc["IP", "behind"] and table.loc["IP", "n_models"] == 2  # scvi has no IP
    # TQ on c2: a is ahead; on the larger c2_c5bp scE2TM leads, and that row stands for the paper's TQ
    assert table.loc["TQ", "verdict"] == "does not hold" and table.loc["TQ", "behind"].startswith("a (+")
    assert table.loc["TQ@c2_c5bp", "verdict"] == "holds" and table.loc["TQ@c2_c5bp", "main"]
    assert not table.loc["TQ", "main"]
    # ARI: the clustering-only scvi competes, and leads
    assert table.loc["ARI", "closest"] == "scvi" and table.loc["ARI", "verdict"] == "does not hold"
    assert table.loc["ARI", "ahead_of"] == 2 and table.loc["ARI", "n_models"] == 3
    # ORA_Q, GSEA_Q, NMI: no scores, nothing to test
    for label in ("ORA_Q", "GSEA_Q", "NMI"):
        assert table.loc[label, "verdict"] == "not testable"
    assert set(statistics.comparisons(results)["metric"]) >= {"IP", "TQ", "TQ@c2_c5bp", "ARI"}

    markdown = report.write_report(results, tmp_path, plots=False)["markdown"].read_text()
    section = markdown.split("## The paper's claims", 1)[1]
    assert ("In short: holds: IP, TQ@c2_c5bp; does not hold: ARI; not testable: ORA_Q, GSEA_Q, NMI." in section)
    assert "| TQ@c2_c5bp * |" in section and "distils from a PCA" not in section.split("###")[0]
    assert "### What distilling from a PCA instead of scGPT means" in section and "7.2 % ARI" in section
    written = pd.read_csv(tmp_path / "claims.csv")
    assert list(written["label"]) == list(table.index)
    # a leaderboard without scE2TM has no such section
    other = runner.Results(config=results.config, cells=results.cells,
                           scores=scores[scores["model"] != "sce2tm"], per_topic=results.per_topic,
                           pathways=results.pathways)
    assert claims.report_sections(other) == ([], [])
    # on three paired cells no claim can reach p < 0.05, and the section says so
    few = runner.Results(config=results.config, cells=results.cells,
                         scores=scores[(scores["dataset"].isin(["d1", "d2"])) & ~((scores["dataset"] == "d2")
                                                                                   & (scores["seed"] == 1))],
                         per_topic=results.per_topic, pathways=results.pathways)
    text = "\n".join(claims.report_sections(few)[0])
    assert ". With 3 paired cells the smallest two-sided Wilcoxon p is 2 / 2^3 = 0.25: no claim" in text
    assert "With 3 paired" not in section
    assert "Partly circular competitors" not in section
    # a competitor whose prior shares sets with c2 (cells.csv prior_overlap) gets a caveat
    cells = pd.DataFrame([{**{c: None for c in runner._CELL_COLUMNS}, "dataset": d, "model": "a", "seed": s,
                           "status": "done", "prior_overlap": '{"c2": {"identical": 1, "n_sets": 9, "similar": 3}}'}
                          for d in ("d1", "d2", "d3", "d4") for s in (0, 1)], columns=runner._CELL_COLUMNS)
    flagged = runner.Results(config=results.config, cells=cells, scores=scores, per_topic=results.per_topic,
                             pathways=results.pathways)
    text = "\n".join(claims.report_sections(flagged)[0])
    assert ("Partly circular competitors: the gene-set scores of a against c2 partly measure the model's gene-set "
            "prior") in text and text.index("Partly circular") < text.index("### What distilling")
    assert "the last column, the paper's baselines only, leaves them out." in text
    # the paper's own baselines only: here scvi alone (a and b are not among them), for ARI
    assert table.loc["ARI", "verdict_paper_baselines"] == "does not hold"
    assert table.loc["ARI", "closest_paper_baseline"].startswith("scvi (-")
    assert table.loc["IP", "verdict_paper_baselines"] == "not testable"


def test_clustering_only_adapters_import_no_model_library():
    import subprocess
    import sys

    code = ("import sys, topiceval.adapters.scvi_latent, topiceval.adapters.embedding, topiceval.leaderboard.claims\n"
            "print(sorted(m for m in ('torch', 'scvi', 'lightning') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
