"""evaluate(): routing, validation, results and the recorded config."""

from __future__ import annotations

import json
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest

from topiceval import TopicOutputs, evaluate
from topiceval.errors import InputError
from topiceval.examples import EXAMPLES
from topiceval.io import read_labels, read_outputs
from topiceval.metrics import interpretation_purity, topic_coherence, topic_diversity


@pytest.fixture(scope="module")
def example():
    ex = EXAMPLES["yan_nmf"]
    return read_outputs(ex.topic_gene, cell_topic=ex.cell_topic, name="yan_nmf"), read_labels(ex.labels)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_scores_equal_the_metric_functions(example, reactome):
    outputs, labels = example
    result = quiet(evaluate, outputs, gene_sets=reactome, labels=labels)
    assert list(result.scores.index) == ["TC", "TD", "TQ", "IP"]
    tc = quiet(topic_coherence, outputs.topic_gene, outputs.gene_names, reactome)
    td = topic_diversity(outputs.topic_gene)
    ip = interpretation_purity(outputs.cell_topic, labels)
    assert result["TC"] == tc.score and result["TD"] == td.score and result["IP"] == ip.score
    assert result["TQ"] == pytest.approx(tc.score * td.score)
    np.testing.assert_array_equal(result.per_topic["TC"], tc.per_topic["TC"])
    assert result.per_topic["top_genes"].map(len).eq(10).all()
    assert {"IP_n_cells", "IP_majority_label", "IP_purity"} <= set(result.per_topic.columns)
    # The NMF example separates the embryo stages well and its topics barely overlap.
    assert result["IP"] > 0.8 and result["TD"] > 0.9


def test_config_records_everything_that_changes_numbers(example, reactome, shared_data):
    outputs, labels = example
    a = quiet(evaluate, outputs, reactome, labels)
    b = quiet(evaluate, outputs, reactome, labels, td_method="exclusive")
    c = quiet(evaluate, outputs, "hallmark", labels)
    assert a.config["options"].items() >= {"top_n": 10, "tc_zero_cooccurrence": 0.0, "td_method": "unique", "seed": 0}.items()
    assert a.config["options"]["cluster_method"] == "louvain"  # every option, used or not
    assert a.config["gene_sets"]["sha256"] == reactome.sha256
    assert a.config["coverage"]["n_covered"] == 2012
    assert a.config["model"] == {"name": "yan_nmf", "n_topics": 10, "n_genes": 4656, "n_cells": 90}
    assert {"numpy", "scipy", "pandas", "topiceval", "python"} <= set(a.config["versions"])
    hashes = {r.config["config_sha256"] for r in (a, b, c)}
    assert len(hashes) == 3
    assert quiet(evaluate, outputs, reactome, labels).config["config_sha256"] == a.config["config_sha256"]
    assert any("43%" in w for w in a.warnings)
    # The same sets from the shared plain GMT (not the shipped gzip) hash the same.
    plain = quiet(evaluate, outputs, shared_data / "gene_sets" / "c2.cp.reactome.v2022.1.Hs.symbols.gmt", labels)
    assert plain.config["gene_sets"]["sha256"] != a.config["gene_sets"]["sha256"]
    assert plain.config["config_sha256"] == a.config["config_sha256"]


def test_metric_selection_and_missing_inputs(example, hallmark):
    outputs, labels = example
    assert list(evaluate(outputs).scores.index) == ["TD"]
    assert list(quiet(evaluate, outputs, hallmark, metrics="tq").scores.index) == ["TC", "TD", "TQ"]
    assert list(evaluate(outputs, labels=labels, metrics=["IP", "td"]).scores.index) == ["IP", "TD"]
    with pytest.raises(InputError, match="unknown metric.*'coherence'.*valid: tc, td, tq, ip"):
        evaluate(outputs, metrics="td,coherence")
    with pytest.raises(InputError, match="metric 'tc' needs gene sets"):
        evaluate(outputs, metrics="tc")
    with pytest.raises(InputError, match="metric 'ip' needs cell labels"):
        evaluate(outputs, metrics="ip")
    no_cells = TopicOutputs(outputs.topic_gene, outputs.gene_names)
    with pytest.raises(InputError, match="needs a cell-topic matrix"):
        evaluate(no_cells, labels=labels, metrics="ip")
    with pytest.raises(InputError, match="unknown option.*tc_zero.*valid"):
        evaluate(outputs, tc_zero=-1)
    with pytest.raises(InputError, match="top_n = 5000 is larger"):
        evaluate(outputs, top_n=5000)
    with pytest.raises(InputError, match="89 labels were given for 90 cells"):
        evaluate(outputs, labels=labels[:-1])
    with pytest.raises(InputError, match="none of the"):
        evaluate(outputs, gene_sets={"S": ["NOT_A_GENE", "NOR_THIS"]}, metrics="tc")


def test_model_with_adata_and_label_column(example, reactome):
    outputs, labels = example

    class Model:
        name = "wrapped"
        gene_names = list(outputs.gene_names)

        def topic_gene(self):
            return outputs.topic_gene

        def cell_topic(self, adata):
            return adata.obsm["theta"]

    adata = anndata.AnnData(
        obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(90)]),
        obsm={"theta": outputs.cell_topic},
    )
    result = quiet(evaluate, Model(), reactome, labels="cell_type", adata=adata)
    direct = quiet(evaluate, outputs, reactome, labels)
    pd.testing.assert_series_equal(result.scores, direct.scores, check_names=False)
    assert result.config["model"]["name"] == "wrapped"
    with pytest.raises(InputError, match="no obs column 'type'.*cell_type"):
        evaluate(Model(), labels="type", adata=adata)
    result.to_uns(adata)
    assert adata.uns["topiceval"]["scores"]["TC"] == result["TC"]


def test_serialisation(example, reactome, tmp_path):
    outputs, labels = example
    result = quiet(evaluate, outputs, reactome, labels, tc_zero_cooccurrence=-1)
    result.to_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert {"TC", "TD", "TQ", "IP", "config", "per_topic"} <= set(data)
    assert data["TC"] == result["TC"] and data["config"]["options"]["tc_zero_cooccurrence"] == -1
    assert len(data["per_topic"]) == 10 and data["per_topic"][0]["topic"] == 0
    long = result.to_long()
    assert list(long.columns) == ["model", "metric", "topic", "value"]
    assert long.query("metric == 'TC' and topic == -1")["value"].item() == result["TC"]
    assert (long.query("metric == 'TC' and topic >= 0")["value"].to_numpy() == result.per_topic["TC"].to_numpy()).all()


def test_same_input_same_output(example, reactome):
    outputs, labels = example
    a = quiet(evaluate, outputs, reactome, labels).to_dict()
    b = quiet(evaluate, outputs, reactome, labels).to_dict()
    assert a == b


def test_scores_on_the_models_own_prior_collection_warn(example):
    """A model trained with a gene-set prior (Spectra) records it; scoring on that same collection
    is circular and says so, another collection is not flagged."""
    import dataclasses

    from topiceval.gene_sets import load

    outputs, labels = example
    record = {key: load("hallmark").config().get(key) for key in ("source", "sha256", "content_sha256")}
    primed = dataclasses.replace(outputs, metadata={**outputs.metadata, "prior_gene_sets": record})
    with pytest.warns(UserWarning, match="prior the model was trained on.*circular"):
        flagged = evaluate(primed, gene_sets="hallmark", metrics="tc")
    assert any("circular" in message for message in flagged.warnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other = evaluate(primed, gene_sets="reactome", metrics="tc")
    assert not any("circular" in str(w.message) for w in caught)
    assert not any("circular" in message for message in other.warnings)
