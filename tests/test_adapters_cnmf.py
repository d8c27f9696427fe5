"""cNMF through the PyPI package ``cnmf`` on real PBMC counts, and reading finished cNMF run folders."""

from __future__ import annotations

import json
import tempfile
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from topiceval.adapters import cnmf, registry
from topiceval.adapters.registry import TrainParams

import topiceval as te
from topiceval.cli import main
from topiceval.errors import InputError

K = 5
#: Few replicates and iterations keep every run around a second on 2 cores.
FAST = {"replicates": 8, "num_highvar_genes": 300}
EPOCHS = 200


@pytest.fixture(scope="module")
def pbmc(shared_data):
    """240 Kang et al. PBMCs (48 per cell type, drawn with a fixed seed), raw UMI counts in X."""
    adata = ad.read_h5ad(shared_data / "datasets" / "kang_pbmc" / "kang_pbmc.h5ad")
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.choice(np.flatnonzero(adata.obs["cell_type"] == t), 48, replace=False)
                           for t in sorted(adata.obs["cell_type"].unique())])
    adata = adata[np.sort(keep)].copy()
    adata = adata[:, np.asarray(adata.X.sum(axis=0)).reshape(-1) > 0].copy()
    adata.obs = adata.obs[["cell_type"]]
    return adata


@pytest.fixture(scope="module")
def trained(pbmc):
    return cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=FAST))


@pytest.fixture(scope="module")
def reference_run(pbmc, tmp_path_factory):
    """The same run made with the cnmf package directly, as its README does, in a folder of its own."""
    from cnmf import cNMF

    work = tmp_path_factory.mktemp("cnmf_ref")
    counts = work / "counts.h5ad"
    ad.AnnData(X=sp.csr_matrix(pbmc.X, dtype=np.float32), obs=pd.DataFrame(index=pbmc.obs_names),
               var=pd.DataFrame(index=pbmc.var_names)).write_h5ad(counts)
    state = np.random.get_state()
    run = cNMF(output_dir=str(work), name="ref")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.prepare(counts_fn=str(counts), components=[K], n_iter=FAST["replicates"], seed=7,
                    num_highvar_genes=FAST["num_highvar_genes"], max_NMF_iter=EPOCHS)
        run.factorize(worker_i=0, total_workers=1)
        run.combine()
        run.consensus(k=K, density_threshold=0.5, show_clustering=False)
        usage, scores, tpm, _ = run.load_results(K=K, density_threshold=0.5)
    np.random.set_state(state)
    return {"folder": work / "ref", "usage": usage, "scores": scores, "tpm": tpm}


def test_outputs_are_the_packages_scores_and_normalised_usages(trained, reference_run, pbmc):
    out = trained.outputs
    assert out.topic_gene.shape == (K, pbmc.n_vars) and out.cell_topic.shape == (pbmc.n_obs, K)
    assert list(out.gene_names) == list(pbmc.var_names)
    # the package's own pipeline with the same seed: identical spectra scores (genes x K there)
    scores = reference_run["scores"].loc[list(pbmc.var_names)].to_numpy().T
    np.testing.assert_allclose(out.topic_gene, scores, rtol=1e-9, atol=1e-12)
    usage = reference_run["usage"].loc[list(pbmc.obs_names)].to_numpy()
    np.testing.assert_allclose(out.cell_topic, usage, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.cell_topic.sum(axis=1), 1.0)
    assert (out.topic_gene < 0).any()  # z-score coefficients are signed
    assert trained.hyperparameters["replicates"] == FAST["replicates"]
    assert trained.hyperparameters["density_threshold"] == 0.5 and trained.hyperparameters["beta_loss"] == "frobenius"


def test_programs_separate_cell_types(trained, pbmc):
    labels = pbmc.obs["cell_type"].to_numpy()
    ev = te.evaluate(trained.outputs, gene_sets="hallmark", labels=labels, metrics="td,ip")
    # five balanced types: one argmax topic for all would give IP 0.2 (seeds 0-3 gave 0.43-0.57;
    # CD4 / CD8 T cells and the two monocyte types share programs at K = 5)
    assert ev.scores["IP"] > 0.35
    assert ev.scores["TD"] > 0.9


def test_tpm_spectra_option(pbmc, reference_run, trained):
    result = cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options={**FAST, "topic_gene": "tpm"}))
    tpm = reference_run["tpm"].loc[list(pbmc.var_names)].to_numpy().T
    np.testing.assert_allclose(result.outputs.topic_gene, tpm / tpm.sum(axis=1, keepdims=True), rtol=1e-9)
    np.testing.assert_allclose(result.outputs.topic_gene.sum(axis=1), 1.0)
    np.testing.assert_allclose(result.outputs.cell_topic, trained.outputs.cell_topic)  # usages do not change
    # why the scores are the default: the TPM spectra's top genes are the same highly expressed
    # genes in every program (seeds 0-3: TD 0.58-0.60 against 1.0 for the scores)
    td = {name: te.evaluate(r.outputs, metrics="td").scores["TD"] for name, r in (("tpm", result), ("score", trained))}
    assert td["tpm"] < td["score"] - 0.2


def test_read_run_folder_made_by_the_package(reference_run, pbmc):
    outputs = cnmf.read_run(reference_run["folder"])
    np.testing.assert_allclose(outputs.topic_gene, reference_run["scores"].to_numpy().T)
    assert list(outputs.gene_names) == list(reference_run["scores"].index)
    usage = reference_run["usage"].to_numpy()
    np.testing.assert_allclose(outputs.cell_topic, usage / usage.sum(axis=1, keepdims=True))
    assert outputs.metadata["k"] == K and outputs.metadata["density_threshold"] == 0.5
    # the parent output_dir works when it holds one run, and so does the adapter form
    model = cnmf.load_run(reference_run["folder"].parent, topic_gene="tpm", name="mine")
    assert model.name == "mine"
    np.testing.assert_allclose(model.topic_gene().sum(axis=1), 1.0)
    ev = te.evaluate(model.outputs(), gene_sets="hallmark", labels=pbmc.obs["cell_type"].to_numpy(), metrics="td,ip")
    assert 0 < ev.scores["IP"] <= 1


def test_read_run_errors(reference_run, tmp_path):
    with pytest.raises(InputError, match="no finished cNMF run"):
        cnmf.read_run(tmp_path)
    with pytest.raises(InputError, match="no run matches"):
        cnmf.read_run(reference_run["folder"], k=K + 1)
    with pytest.raises(InputError, match="topic_gene"):
        cnmf.read_run(reference_run["folder"], topic_gene="spectra")
    # two consensus runs in one folder: the choice must be named
    twin = tmp_path / "twin"
    twin.mkdir()
    for path in reference_run["folder"].glob("*.txt"):
        (twin / path.name).write_bytes(path.read_bytes())
        (twin / path.name.replace("dt_0_5", "dt_2_0")).write_bytes(path.read_bytes())
    with pytest.raises(InputError, match="several runs match"):
        cnmf.read_run(twin)
    assert cnmf.read_run(twin, density_threshold=2.0).metadata["density_threshold"] == 2.0


def test_seeded_deterministic_clean(pbmc, trained, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    state = np.random.get_state()
    again = cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options={**FAST, "threads": 2}))
    assert list(tmp_path.iterdir()) == []  # the working folder is gone
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])  # the caller's RNG is untouched
    np.testing.assert_allclose(again.outputs.topic_gene, trained.outputs.topic_gene, rtol=1e-9, atol=1e-12)
    other = cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=8, options=FAST))
    assert not np.allclose(other.outputs.topic_gene, trained.outputs.topic_gene, atol=1e-6)


def test_a_killed_fit_resumes_from_its_kept_folder_to_the_same_numbers(pbmc, trained, tmp_path, monkeypatch):
    """A fit killed after 3 of its 8 chunks of replicates keeps them and runs the other 5."""
    from cnmf import cNMF

    folder = tmp_path / "ck" / "cell"
    options = {**FAST, "checkpoint": str(folder)}
    real = cNMF.factorize
    calls, kill = [], {"at": 3}

    def factorize(self, worker_i=0, total_workers=1, **kwargs):
        if worker_i == kill["at"]:
            raise KeyboardInterrupt  # killed while the fourth chunk runs
        calls.append(worker_i)
        return real(self, worker_i=worker_i, total_workers=total_workers, **kwargs)

    monkeypatch.setattr(cNMF, "factorize", factorize)
    with pytest.raises(KeyboardInterrupt):
        cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=options))
    state = json.loads((folder / "topiceval-state.json").read_text())
    assert calls == [0, 1, 2] and state["prepared"] and state["chunks"] == [0, 1, 2]
    kill["at"] = None
    calls.clear()
    resumed = cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=options))
    assert calls == [3, 4, 5, 6, 7]
    assert resumed.info["resumed_chunks"] == 3 and resumed.info["resumed_fit_s"] > 0
    assert not folder.exists()  # removed once the fit ended
    np.testing.assert_array_equal(resumed.outputs.topic_gene, trained.outputs.topic_gene)
    np.testing.assert_array_equal(resumed.outputs.cell_topic, trained.outputs.cell_topic)
    assert resumed.hyperparameters == trained.hyperparameters
    # a kept folder of another seed is emptied and the fit starts over
    monkeypatch.setattr(cNMF, "factorize", real)
    folder.mkdir(parents=True)
    (folder / "topiceval-state.json").write_text(json.dumps({"key": "another fit", "prepared": True, "chunks": [0]}))
    again = cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=options))
    assert again.info["resumed_chunks"] == 0 and not folder.exists()
    np.testing.assert_array_equal(again.outputs.topic_gene, trained.outputs.topic_gene)
    # a fit that fails for good leaves nothing to resume; a folder that is not one is not touched
    monkeypatch.setattr(cNMF, "consensus", lambda self, *a, **k: (_ for _ in ()).throw(ValueError("no cluster")))
    with pytest.raises(InputError, match="cnmf consensus"):
        cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=options))
    assert not folder.exists()
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a cNMF working folder"):
        cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=options))
    assert (folder / "notes.txt").read_text() == "mine"


def test_progress_off_draws_no_bar_and_changes_no_number(pbmc, trained, capsys):
    capsys.readouterr()
    quiet = cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=FAST, progress=False))
    assert "NMF replicates" not in capsys.readouterr().err
    np.testing.assert_allclose(quiet.outputs.topic_gene, trained.outputs.topic_gene, rtol=1e-9, atol=1e-12)
    assert "progress" not in quiet.hyperparameters
    cnmf.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options={**FAST, "progress": True}, progress=False))
    assert "NMF replicates" in capsys.readouterr().err  # the explicit option wins


def test_genes_without_counts_and_input_errors(pbmc):
    padded = ad.concat([pbmc, ad.AnnData(X=sp.csr_matrix((pbmc.n_obs, 1), dtype=np.float32),
                                         obs=pd.DataFrame(index=pbmc.obs_names), var=pd.DataFrame(index=["EMPTY1"]))],
                       axis=1)
    result = cnmf.train(padded, TrainParams(n_topics=K, epochs=EPOCHS, seed=7, options=FAST))
    assert result.info["genes_without_counts"] == 1
    np.testing.assert_array_equal(result.outputs.topic_gene[:, -1], 0.0)
    with pytest.raises(InputError, match="no option"):
        cnmf.train(pbmc, TrainParams(n_topics=K, options={"replicate": 3}))
    with pytest.raises(InputError, match="no neighbour"):
        cnmf.train(pbmc, TrainParams(n_topics=K, options={"replicates": 3}))
    with pytest.raises(InputError, match="negative"):
        bad = pbmc.copy()
        bad.X = bad.X.toarray() - 1
        cnmf.train(bad, TrainParams(n_topics=K, options=FAST))


def test_train_cli_writes_a_run_folder_that_read_run_reads(pbmc, tmp_path):
    data = tmp_path / "counts.h5ad"
    pbmc.write_h5ad(data)
    out = tmp_path / "run"
    assert registry.get("cnmf").extra == "cnmf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", "cnmf", "--data", str(data), "--out", str(out), "--topics", str(K), "--epochs",
                     str(EPOCHS), "--seed", "7", "--label-key", "cell_type", "--set", "replicates=8",
                     "--set", "num_highvar_genes=300"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "cnmf" and config["hyperparameters"]["replicates"] == 8
    assert "cnmf" in config["versions"]
    written = te.read_outputs(out / "outputs.h5ad")
    saved = cnmf.read_run(out / "model")
    np.testing.assert_allclose(written.topic_gene, saved.topic_gene, rtol=1e-12)
    np.testing.assert_allclose(written.cell_topic, saved.cell_topic, rtol=1e-12)
