"""The adapters in the model registry: entries, the run folder layout, errors naming extras."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from topiceval.adapters import _common, registry
from topiceval.adapters.registry import BUILTIN, TrainParams

import topiceval as te
from topiceval import datasets
from topiceval.errors import InputError, TopicEvalError
from topiceval.io import read_labels

ADAPTERS = {"nmf": None, "lda": None, "scetm": "scetm", "ldvae": "ldvae", "dscigm": "dscigm"}


def test_builtin_entries_load_their_trainers():
    names = {entry.name for entry in BUILTIN}
    assert set(ADAPTERS) <= names
    for name, extra in ADAPTERS.items():
        entry = registry.get(name)
        assert entry.extra == extra
        assert entry.missing() == []  # the test extra installs every model library
        trainer = entry.load()
        module = sys.modules[trainer.__module__]
        assert trainer is module.train and module.__name__ == f"topiceval.adapters.{name}"


def test_missing_module_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scvi" else real(name, *a))
    with pytest.raises(TopicEvalError, match=r'needs scvi: pip install "topiceval\[ldvae\]"'):
        registry.get("ldvae").load()


def test_import_extra_error_is_an_import_error_too(monkeypatch):
    monkeypatch.setitem(sys.modules, "not_installed_model_lib", None)
    with pytest.raises(ImportError, match=r'model \'x\' needs not_installed_model_lib .*pip install "topiceval\[xx\]"'):
        _common.import_extra("not_installed_model_lib", "xx", "x")


def test_parse_options_coerces_command_line_strings():
    defaults = {"a": 1, "b": 0.5, "c": True, "d": (1, 2), "e": None, "f": "auto"}
    got = _common.parse_options({"a": "3", "b": "1e-2", "c": "false", "d": "4,5,6", "e": "none", "f": "x"},
                                defaults, "m")
    assert got == {"a": 3, "b": 0.01, "c": False, "d": (4, 5, 6), "e": None, "f": "x"}
    with pytest.raises(InputError, match="not a valid int"):
        _common.parse_options({"a": "three"}, defaults, "m")


def counts_file(path, n_genes):
    """Raw counts of ``n_genes`` HVGs in X *and* layers["counts"]: valid input whether or not
    ``registry.train`` preprocesses first (preprocessing keeps all of them and the same counts)."""
    import anndata

    adata = datasets.preprocess(datasets.load_default(), n_top_genes=n_genes)
    raw = anndata.AnnData(X=adata.layers["counts"].copy(), obs=adata.obs[["cell_type"]].copy())
    raw.var_names = adata.var_names
    raw.layers["counts"] = adata.layers["counts"].copy()
    raw.write_h5ad(path)
    return adata


def test_registry_train_writes_the_documented_folder(tmp_path):
    """``topiceval train nmf`` path: h5ad in, DIR/outputs.h5ad + config.json out, scoreable."""
    data = tmp_path / "pollen.h5ad"
    adata = counts_file(data, 800)
    out = registry.train("nmf", data, tmp_path / "run",
                         params=TrainParams(n_topics=5, epochs=50, seed=2, label_key="cell_type"))
    config = json.loads((out / registry.CONFIG_FILE).read_text())
    assert config["model"] == "nmf" and config["hyperparameters"]["n_topics"] == 5
    assert config["hyperparameters"]["input"] == "layers['counts']" and config["seed"] == 2
    assert not (out / registry.MODEL_DIR).exists()  # NMF has no weights beyond its outputs

    from topiceval.adapters import nmf

    written = te.read_outputs(out / registry.OUTPUTS_FILE)
    direct = nmf.fit(adata, 5, epochs=50, seed=2)
    np.testing.assert_allclose(written.topic_gene, direct.topic_gene)
    np.testing.assert_allclose(written.cell_topic, direct.cell_topic)
    assert list(written.gene_names) == list(adata.var_names)
    labels = read_labels(f"{out / registry.OUTPUTS_FILE}:cell_type")
    ev = te.evaluate(written, labels=labels, metrics="td,ip")
    assert 0 < ev.scores["IP"] <= 1


def test_registry_train_saves_model_weights(tmp_path):
    data = tmp_path / "small.h5ad"
    counts_file(data, 300)
    options = {"n_layers": 1, "hidden_sizes": "16", "embed_size": "8", "n_samples": "2"}
    out = registry.train("dscigm", data, tmp_path / "run", params=TrainParams(n_topics=3, epochs=1, options=options))
    from topiceval.models.dscigm import DSCIGM

    model = DSCIGM.load(out / registry.MODEL_DIR)
    written = te.read_outputs(out / registry.OUTPUTS_FILE)
    np.testing.assert_allclose(written.topic_gene, model.topic_gene(), rtol=1e-12)
    config = json.loads((out / registry.CONFIG_FILE).read_text())
    assert config["hyperparameters"]["hidden_sizes"] == [16]


def test_adapters_import_no_model_library():
    import subprocess

    code = ("import sys, topiceval.adapters, topiceval.adapters.registry as r\n"
            "import topiceval.adapters.nmf, topiceval.adapters.lda, topiceval.adapters.scetm\n"
            "import topiceval.adapters.ldvae, topiceval.adapters.dscigm, topiceval.adapters.precomputed\n"
            "[e.missing() for e in r.available()]\n"
            "print(sorted(m for m in ('torch', 'scETM', 'scvi', 'sklearn', 'lightning') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
