"""`topiceval train` and the model registry: one output layout that `topiceval score` reads."""

from __future__ import annotations

import json
import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from topiceval.adapters import registry
from topiceval.cli import main
from topiceval.errors import InputError, TopicEvalError


@pytest.fixture(scope="module")
def yan_h5ad(shared_data, tmp_path_factory):
    """The Yan et al. data (log-scaled, 90 cells) with labels, as an h5ad; 600 genes to stay small."""
    frame = pd.read_csv(shared_data / "datasets" / "yan" / "yan_HIGHPRE.csv", index_col=0)
    labels = pd.read_csv(shared_data / "datasets" / "yan" / "yan_cell_anno.csv", index_col=0).iloc[:, 0]
    frame = frame.loc[:, frame.var().sort_values(ascending=False, kind="stable").index[:600]]
    adata = ad.AnnData(X=frame.to_numpy(np.float32), obs=pd.DataFrame({"cell_type": labels.astype(str).to_numpy()}, index=frame.index),
                       var=pd.DataFrame(index=frame.columns))
    path = tmp_path_factory.mktemp("data") / "yan.h5ad"
    adata.write_h5ad(path)
    return path


def test_train_list(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    assert "sce2tm" in out and "[installed]" in out


def test_train_writes_the_layout_that_score_reads(yan_h5ad, tmp_path, capsys):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", "sce2tm", "--data", str(yan_h5ad), "--out", str(out), "--epochs", "2",
                     "--topics", "5", "--seed", "3", "--label-key", "cell_type", "--set", "progress=false",
                     "--set", "ecr_weight=20"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model", "outputs.h5ad"]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "sce2tm" and config["seed"] == 3
    assert config["hyperparameters"]["n_topics"] == 5 and config["hyperparameters"]["ecr_weight"] == 20
    assert config["data"]["label_key"] == "cell_type" and len(config["data"]["sha256"]) == 64
    assert {"torch", "topiceval", "python"} <= set(config["versions"])
    assert config["timings"]["fit_s"] > 0
    # the outputs match what the saved model gives
    from topiceval.io import read_outputs
    from topiceval.models.sce2tm import SCE2TM

    outputs = read_outputs(out / "outputs.h5ad")
    model = SCE2TM.load(out / "model")
    np.testing.assert_allclose(outputs.topic_gene, model.topic_gene())
    data = ad.read_h5ad(yan_h5ad)
    np.testing.assert_allclose(outputs.cell_embedding, model.cell_embedding(data))
    assert outputs.cell_topic.shape == (90, 5)
    capsys.readouterr()
    score = tmp_path / "score.json"
    assert main(["score", "--topic-gene", str(out / "outputs.h5ad"), "--labels", f"{out / 'outputs.h5ad'}:cell_type",
                 "--gene-sets", "hallmark", "--out", str(score)]) == 0
    result = json.loads(score.read_text())
    assert 0 < result["IP"] <= 1 and 0 < result["TD"] <= 1
    # an existing folder is refused unless --overwrite
    assert main(["train", "sce2tm", "--data", str(yan_h5ad), "--out", str(out), "--epochs", "1"]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train"], "name a model"),
        (["train", "nosuchmodel", "--data", "x.h5ad", "--out", "d"], "unknown model"),
        (["train", "sce2tm", "--out", "d"], "--data"),
        (["train", "sce2tm", "--data", "missing.h5ad", "--out", "d"], "not found"),
        (["train", "sce2tm", "--data", "{data}", "--out", "{tmp}/x", "--set", "noequals"], "KEY=VALUE"),
        (["train", "sce2tm", "--data", "{data}", "--out", "{tmp}/x", "--set", "bogus=1"], "unknown scE2TM hyperparameter"),
        (["train", "sce2tm", "--data", "{data}", "--out", "{tmp}/x", "--label-key", "nope"], "label column 'nope'"),
    ],
)
def test_train_errors_are_one_line(argv, message, yan_h5ad, tmp_path, capsys):
    argv = [a.format(data=yan_h5ad, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    # at most the line saying what the model trains on, then the one-line error
    lines = err.splitlines()
    assert len(lines) <= 2 and lines[-1].startswith("topiceval: error:") and message in lines[-1]
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_registry_names_the_missing_extra():
    entry = registry.ModelEntry(name="fake", target="nowhere:train", extra="fake", requires=("no_such_module_zz",),
                                description="a model whose library is missing")
    registry.register(entry)
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register(entry)
        assert entry in registry.available()
        with pytest.raises(TopicEvalError, match=r'pip install "topiceval\[fake\]"'):
            registry.get("fake").load()
    finally:
        registry._REGISTRY.pop("fake")
    with pytest.raises(InputError, match="unknown model"):
        registry.get("nope")


def test_registry_layout_with_a_plain_trainer(yan_h5ad, tmp_path, monkeypatch):
    """Any trainer returning TopicOutputs gets the same layout (no weights folder without save)."""
    from topiceval.protocol import TopicOutputs

    def fake_trainer(adata, params):
        rng = np.random.default_rng(params.seed)
        return registry.TrainResult(
            outputs=TopicOutputs(topic_gene=rng.random((3, adata.n_vars)), gene_names=np.asarray(adata.var_names),
                                 cell_topic=rng.random((adata.n_obs, 3)), name="fake"),
            hyperparameters={"k": 3})

    import sys
    import types

    module = types.ModuleType("fake_trainer_module")
    module.train = fake_trainer
    monkeypatch.setitem(sys.modules, "fake_trainer_module", module)
    registry.register(registry.ModelEntry("plain", "fake_trainer_module:train", None, (), "test"), replace=True)
    try:
        out = registry.train("plain", yan_h5ad, tmp_path / "p", params=registry.TrainParams(seed=1))
    finally:
        registry._REGISTRY.pop("plain")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "outputs.h5ad"]
    written = ad.read_h5ad(out / "outputs.h5ad")
    assert list(written.obs["cell_type"]) == list(ad.read_h5ad(yan_h5ad).obs["cell_type"])
    assert written.varm["topic_gene"].shape == (600, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_train_preprocesses_raw_counts_when_asked(full_shared_data, tmp_path, capsys):
    out = tmp_path / "ting"
    data = full_shared_data / "datasets" / "ting" / "ting.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", "sce2tm", "--data", str(data), "--out", str(out), "--preprocess", "300",
                     "--epochs", "1", "--topics", "4", "--set", "progress=false"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["shape"] == [149, 21677]
    assert config["data"]["n_genes"] == 300
    assert config["data"]["preprocessing"]["highly_variable_genes"]["n_top_genes"] == 300
    written = ad.read_h5ad(out / "outputs.h5ad")
    assert written.shape == (149, 300) and "cell_type" in written.obs
    from topiceval.datasets import preprocess

    expected = preprocess(ad.read_h5ad(data), n_top_genes=300)
    assert list(written.var_names) == list(expected.var_names)


# --------------------------------------------------------------------------- a counts file as it comes
@pytest.fixture(scope="module")
def counts_h5ad(shared_data, tmp_path_factory):
    """Ting et al. raw counts in X and no layers (the most common file), cut to 60 cells x 400 genes
    (the most expressed) to keep every model quick."""
    data = ad.read_h5ad(shared_data / "datasets" / "ting" / "ting.h5ad")
    totals = np.asarray(data.X.sum(axis=0)).ravel()
    genes = np.sort(np.argsort(-totals, kind="stable")[:400])
    small = data[:60, genes].copy()
    small.obs = small.obs[["cell_type"]]
    assert not small.layers and float(small.X.max()) > 1
    path = tmp_path_factory.mktemp("counts") / "counts.h5ad"
    small.write_h5ad(path)
    return path


def _modes(folder):
    """Permission bits of a folder and everything in it."""
    return {str(p.relative_to(folder.parent)): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize(("model", "says"), [
    ("nmf", "X holds raw counts: trains on X"),
    ("lda", "X holds raw counts: trains on X"),
    ("scetm", "X holds raw counts: trains on X"),
    ("ldvae", "X holds raw counts: trains on X"),
    ("dscigm", "applied the paper's preprocessing"),
    ("sce2tm", "applied the paper's preprocessing"),
])
def test_every_model_trains_from_a_counts_file_as_given(model, says, counts_h5ad, tmp_path, capsys):
    """`topiceval train MODEL --data counts.h5ad` works for every model, says in one line what it
    trained on, and writes files that follow the umask (027 here: group-readable, not world)."""
    out = tmp_path / "runs" / model
    previous = os.umask(0o027)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["train", model, "--data", str(counts_h5ad), "--out", str(out), "--epochs", "2",
                         "--topics", "3", "--no-progress"])
    finally:
        os.umask(previous)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    notes = [line for line in captured.err.splitlines() if line.startswith(f"{model}: ")]
    assert len(notes) == 1 and says in notes[0], captured.err
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["input"] == notes[0]
    assert config["data"]["n_cells"] == 60
    if model in ("sce2tm", "dscigm"):  # the paper's preprocessing keeps min(5000, n_genes) genes
        assert config["data"]["preprocessing"]["highly_variable_genes"]["n_top_genes"] == 400
    modes = _modes(out)
    assert modes[model] == 0o750
    assert {p: m for p, m in modes.items() if (tmp_path / "runs" / p).is_file()} == {
        p: 0o640 for p in modes if (tmp_path / "runs" / p).is_file()}
    assert {p: m for p, m in modes.items() if (tmp_path / "runs" / p).is_dir()} == {
        p: 0o750 for p in modes if (tmp_path / "runs" / p).is_dir()}


def test_train_files_follow_umask_022(counts_h5ad, tmp_path, capsys):
    out = tmp_path / "nmf"
    previous = os.umask(0o022)
    try:
        assert main(["train", "nmf", "--data", str(counts_h5ad), "--out", str(out), "--epochs", "5",
                     "--topics", "3"]) == 0
    finally:
        os.umask(previous)
    assert _modes(out) == {"nmf": 0o755, "nmf/config.json": 0o644, "nmf/outputs.h5ad": 0o644}


def test_train_shows_progress_unless_asked_not_to(counts_h5ad, tmp_path, capsys):
    args = ["train", "nmf", "--data", str(counts_h5ad), "--epochs", "20", "--topics", "3"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--out", str(tmp_path / "a")]) == 0
        shown = capsys.readouterr()
        assert main([*args, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
        quiet = capsys.readouterr()
    assert "Epoch 10 reached" in shown.err  # scikit-learn reports every 10 iterations
    assert "Epoch" not in shown.out  # stdout keeps the results only
    assert "Epoch" not in quiet.err
    # progress changes no number
    import anndata

    a = anndata.read_h5ad(tmp_path / "a" / "outputs.h5ad").varm["topic_gene"]
    b = anndata.read_h5ad(tmp_path / "b" / "outputs.h5ad").varm["topic_gene"]
    np.testing.assert_array_equal(a, b)


def test_count_models_refuse_log_data_naming_the_flags(yan_h5ad, tmp_path, capsys):
    """X holds log values and there is no counts layer: the error names the CLI flags."""
    assert main(["train", "nmf", "--data", str(yan_h5ad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("topiceval: error:") and "layers['counts']" in err
    assert "--layer NAME" in err and "--preprocess N_GENES" in err and "--layer X" in err
    assert not (tmp_path / "x").exists()
    # --layer X trains on X as it is, and says so
    assert main(["train", "nmf", "--data", str(yan_h5ad), "--out", str(tmp_path / "x"), "--layer", "X",
                 "--epochs", "5", "--topics", "3", "--no-progress"]) == 0
    assert "nmf: trains on X, as asked (--layer)" in capsys.readouterr().err


def test_overwrite_error_names_the_flag(counts_h5ad, tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "something").write_text("x")
    assert main(["train", "nmf", "--data", str(counts_h5ad), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_train_help_states_each_models_input_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default X)" not in text
    assert "nmf, lda, scetm, ldvae train on layers['counts'], else on X when it holds raw counts" in text
    assert "--no-progress" in text
