"""Spectra through the PyPI package ``scspectra`` on real PBMC data, its gene-set prior, and the
leaderboard report's flag on scores computed against that prior."""

from __future__ import annotations

import functools

import json
import random
import sys
import warnings

import anndata as ad
import numpy as np
import pytest
import torch
from topiceval.adapters import registry, spectra
from topiceval.adapters._common import global_seed
from topiceval.adapters.registry import TrainParams

import topiceval as te
from topiceval import datasets
from topiceval.cli import main
from topiceval.errors import InputError
from topiceval.gene_sets import load

K = 6
EPOCHS = 25


@pytest.fixture(scope="module")
def pbmc(shared_data):
    """180 Kang et al. PBMCs (36 per cell type, fixed seed), the paper's preprocessing with 300 HVGs:
    ``X`` log-normalised, ``layers["counts"]`` raw UMI counts."""
    adata = ad.read_h5ad(shared_data / "datasets" / "kang_pbmc" / "kang_pbmc.h5ad")
    rng = np.random.default_rng(1)
    keep = np.concatenate([rng.choice(np.flatnonzero(adata.obs["cell_type"] == t), 36, replace=False)
                           for t in sorted(adata.obs["cell_type"].unique())])
    adata = adata[np.sort(keep)].copy()
    adata.obs = adata.obs[["cell_type"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return datasets.preprocess(adata, n_top_genes=300)


def run(adata, seed=0, **options):
    return spectra.train(adata, TrainParams(n_topics=K, epochs=EPOCHS, seed=seed,
                                            options={"gene_sets": "hallmark", **options}))


@pytest.fixture(scope="module")
def trained(pbmc):
    return run(pbmc)


def test_outputs_are_the_packages_factors_and_cell_scores(trained, pbmc):
    """The same est_spectra call made by hand, seeded the same way, gives the same matrices."""
    import Spectra

    hallmark = load("hallmark")
    genes = list(pbmc.var_names)
    upper = {g.upper(): g for g in genes}
    dictionary = {name: sorted({upper[g] for g in members if g in upper})
                  for name, members in hallmark.to_dict().items()}
    dictionary = {name: members for name, members in dictionary.items() if len(members) >= 3}
    frame = ad.AnnData(X=np.asarray(pbmc.X.toarray(), dtype=np.float32))
    frame.var_names = genes
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Spectra.est_spectra(adata=frame, gene_set_dictionary=dictionary, L=K, use_highly_variable=False,
                                use_weights=True, lam=0.1, delta=0.001, kappa=None, rho=0.001,
                                use_cell_types=False, n_top_vals=50, label_factors=True, overlap_threshold=0.2,
                                clean_gs=True, min_gs_num=3, num_epochs=EPOCHS)
    finally:
        torch.set_num_threads(previous)
    out = trained.outputs
    assert out.topic_gene.shape == (K, pbmc.n_vars) and out.cell_topic.shape == (pbmc.n_obs, K)
    np.testing.assert_allclose(out.topic_gene, frame.uns["SPECTRA_factors"], rtol=1e-6)
    scores = frame.obsm["SPECTRA_cell_scores"]
    np.testing.assert_allclose(out.cell_topic, scores / scores.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(out.cell_topic.sum(axis=1), 1.0)
    assert (out.topic_gene >= 0).all()
    assert trained.info["factor_labels"] == [str(x) for x in frame.uns["SPECTRA_overlap"].index]
    assert trained.hyperparameters["lam"] == 0.1 and trained.hyperparameters["log_normalised_here"] is False


def test_prior_is_recorded_and_guides_the_factors(trained, pbmc):
    hallmark = load("hallmark").config()
    record = trained.info["prior_gene_sets"]
    assert record == trained.outputs.metadata["prior_gene_sets"]
    assert record["sha256"] == hallmark["sha256"] and record["content_sha256"] == hallmark["content_sha256"]
    assert record["spec"] == "hallmark" and record["n_sets"] == 50
    assert record["n_sets_used"] == K - 1 <= record["n_sets_in_data"]
    # each of the K - 1 prior-initialised factors is labelled with a Hallmark set its top genes overlap
    labelled = [label for label in trained.info["factor_labels"] if "HALLMARK_" in label]
    assert len(labelled) >= K - 2


def test_seeded_and_rng_restored(pbmc, trained):
    state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    again = run(pbmc)
    np.testing.assert_array_equal(again.outputs.topic_gene, trained.outputs.topic_gene)
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    other = run(pbmc, seed=1)
    assert not np.allclose(other.outputs.topic_gene, trained.outputs.topic_gene, atol=1e-6)


def test_progress_off_draws_no_bar_and_changes_no_number(pbmc, trained, capsys):
    capsys.readouterr()
    loud = run(pbmc)
    assert f"{EPOCHS}/{EPOCHS}" in capsys.readouterr().err  # Spectra's own bar, by default
    quiet = spectra.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=0, options={"gene_sets": "hallmark"},
                                            progress=False))
    assert f"{EPOCHS}/{EPOCHS}" not in capsys.readouterr().err
    np.testing.assert_array_equal(quiet.outputs.topic_gene, loud.outputs.topic_gene)
    assert "progress" not in quiet.hyperparameters
    from Spectra import Spectra as module  # the bar is disabled for the fit only
    assert not isinstance(module.tqdm, functools.partial)


def _hallmark_dictionary(adata):
    genes = list(adata.var_names)
    upper = {g.upper(): g for g in genes}
    dictionary = {name: sorted({upper[g] for g in members if g in upper})
                  for name, members in load("hallmark").to_dict().items()}
    return {name: members for name, members in dictionary.items() if len(members) >= 3}


@pytest.mark.parametrize("schedule", [list(spectra.LR_SCHEDULE), [1.0, 0.5]])
def test_resumable_loop_is_spectras_own_loop(pbmc, tmp_path, schedule):
    """est_spectra with topiceval's checkpointing loop in place of SPECTRA_Model.train gives Spectra's
    numbers bit for bit, through the learning-rate drops and the schedule's early stop."""
    Spectra = spectra._import_spectra()
    dictionary = _hallmark_dictionary(pbmc)

    def fit(checkpoint):
        frame = ad.AnnData(X=np.asarray(pbmc.X.toarray(), dtype=np.float32))
        frame.var_names = list(pbmc.var_names)
        record = {}
        with global_seed(0), warnings.catch_warnings(), \
                spectra._training_loop(Spectra, checkpoint, 40, False, record):
            warnings.simplefilter("ignore")
            Spectra.est_spectra(adata=frame, gene_set_dictionary=dictionary, L=K, use_highly_variable=False,
                                lam=0.1, use_cell_types=False, num_epochs=300, lr_schedule=schedule)
        return frame, record

    theirs, none = fit(None)
    ours, record = fit(spectra._Checkpoint(tmp_path / "fit.pt", {"seed": 0}))
    assert none == {} and record["resumed_at_epoch"] == 0
    np.testing.assert_array_equal(ours.uns["SPECTRA_factors"], theirs.uns["SPECTRA_factors"])
    np.testing.assert_array_equal(ours.obsm["SPECTRA_cell_scores"], theirs.obsm["SPECTRA_cell_scores"])
    if len(schedule) == 2:  # the loss stopped falling six times: the schedule ended the fit
        assert record["stopped_by_schedule"] and record["epochs_run"] < 300 and record["final_lr"] == 0.5
    else:  # three learning-rate drops within 300 epochs (measured: 1.0 -> 0.01)
        assert not record["stopped_by_schedule"] and record["epochs_run"] == 300 and record["final_lr"] < 0.1


@pytest.mark.parametrize("loss", ["spectra", "blocked"])
def test_a_killed_fit_resumes_from_its_checkpoint_to_the_same_numbers(pbmc, tmp_path, monkeypatch, loss):
    epochs = 300
    straight = spectra.train(pbmc, TrainParams(n_topics=K, epochs=epochs, seed=0,
                                               options={"gene_sets": "hallmark", "progress": False, "loss": loss}))
    path = tmp_path / "ck" / "fit.pt"
    options = {"gene_sets": "hallmark", "progress": False, "checkpoint": str(path), "checkpoint_every": 50,
               "loss": loss}
    real_save = spectra._Checkpoint.save

    def save_then_die(self, state):
        real_save(self, state)
        if state["epoch"] == 100:
            raise KeyboardInterrupt  # the process is killed right after the checkpoint of epoch 100

    monkeypatch.setattr(spectra._Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        spectra.train(pbmc, TrainParams(n_topics=K, epochs=epochs, seed=0, options=options))
    monkeypatch.setattr(spectra._Checkpoint, "save", real_save)
    assert [p.name for p in path.parent.iterdir()] == ["fit.pt"]  # no half-written file
    resumed = spectra.train(pbmc, TrainParams(n_topics=K, epochs=epochs, seed=0, options=options))
    assert resumed.info["resumed_at_epoch"] == 100 and resumed.info["epochs_run"] == epochs
    assert 0 < resumed.info["resumed_fit_s"] < resumed.info["fit_s"] + resumed.info["resumed_fit_s"]
    assert not path.exists()  # removed once the fit ended
    np.testing.assert_array_equal(resumed.outputs.topic_gene, straight.outputs.topic_gene)
    np.testing.assert_array_equal(resumed.outputs.cell_topic, straight.outputs.cell_topic)
    assert resumed.hyperparameters == straight.hyperparameters  # where it was saved changes no setting
    # a checkpoint of another seed is not used: the fit starts over
    monkeypatch.setattr(spectra._Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        spectra.train(pbmc, TrainParams(n_topics=K, epochs=epochs, seed=1, options=options))
    monkeypatch.setattr(spectra._Checkpoint, "save", real_save)
    again = spectra.train(pbmc, TrainParams(n_topics=K, epochs=epochs, seed=0, options=options))
    assert again.info["resumed_at_epoch"] == 0 and again.info["resumed_fit_s"] == 0
    np.testing.assert_array_equal(again.outputs.topic_gene, straight.outputs.topic_gene)
    with pytest.raises(InputError, match="checkpoint_every"):
        run(pbmc, checkpoint=str(path), checkpoint_every=0)


def _spectra_model(pbmc, dtype=torch.float32):
    """A SPECTRA model on the PBMCs' Hallmark graph (Spectra's own construction), its input, and
    its parameters moved off their initial values so that no gradient is special."""
    Spectra = spectra._import_spectra()
    dictionary = _hallmark_dictionary(pbmc)
    vocab = list(pbmc.var_names)
    gene2id = {gene: i for i, gene in enumerate(vocab)}
    adj, weights = Spectra.Spectra_util.process_gene_sets_no_celltypes(dictionary, gene2id, weighted=True)
    x = np.asarray(pbmc.X.toarray(), dtype=np.float32)
    with global_seed(3):
        model = Spectra.Spectra.SPECTRA(x, None, adj, K, weights=weights, lam=0.1, delta=0.001, kappa=None,
                                        rho=0.001, use_cell_types=False)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.5 * torch.randn_like(parameter))
    model = model.to(dtype)
    for name in ("adj_matrix", "adj_matrix_1m", "weights", "rho"):
        setattr(model, name, getattr(model, name).to(dtype))
    return model, torch.from_numpy(x).to(dtype)


def _loss_and_gradients(model, loss):
    model.zero_grad()
    value = loss()
    value.backward()
    return value.item(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("block", [None, 7])
def test_blocked_loss_is_spectras_loss_with_its_gradients(pbmc, block):
    """The graph terms in row blocks: Spectra's loss_no_cell_types and autograd's gradients, to
    float64 rounding in float64 and to float32 rounding in float32 (Spectra's dtype)."""
    from topiceval.adapters import _spectra_graph

    for dtype, rtol in ((torch.float64, 1e-10), (torch.float32, 2e-4)):
        model, x = _spectra_model(pbmc, dtype)
        graph = _spectra_graph.GeneGraph.from_model(model, block=block)
        assert graph.symmetric and graph.n_edges == int(model.adj_matrix.count_nonzero())
        assert len(graph.blocks) == (1 if block is None else -(-pbmc.n_vars // block))
        theirs, their_grads = _loss_and_gradients(model, lambda: model.loss_no_cell_types(x))
        ours, our_grads = _loss_and_gradients(model, lambda: _spectra_graph.loss_no_cell_types(model, x, graph))
        assert ours == pytest.approx(theirs, rel=rtol)
        assert set(our_grads) == set(their_grads) == {"theta", "alpha", "eta", "gene_scaling", "kappa"}
        for name, grad in their_grads.items():
            scale = grad.abs().max().item()
            assert scale > 0
            torch.testing.assert_close(our_grads[name], grad, rtol=0, atol=rtol * scale, msg=name)


def test_blocked_graph_terms_of_an_asymmetric_graph(pbmc):
    """The general products (an asymmetric graph, eta not symmetric) against autograd through
    Spectra's expressions for the two terms."""
    from topiceval.adapters import _spectra_graph

    rng = np.random.default_rng(5)
    n, k = 40, 4
    adj = (rng.random((n, n)) < 0.2).astype(np.float64)
    np.fill_diagonal(adj, 0.0)
    weights = rng.random((n, n)) * adj
    graph = _spectra_graph.GeneGraph(torch.from_numpy(adj), torch.from_numpy(weights),
                                     torch.from_numpy(1.0 - adj - np.eye(n)), block=6)
    assert not graph.symmetric
    theta = torch.softmax(torch.from_numpy(rng.normal(size=(n, k))), dim=1).requires_grad_()
    eta = torch.sigmoid(torch.from_numpy(rng.normal(size=(k, k)))).requires_grad_()
    kappa = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    rho = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)

    def spectras():  # term2 + term3 of SPECTRA.loss_no_cell_types, genes x genes
        mat = theta @ eta @ theta.T
        adj_t, w_t, adj_1m = torch.from_numpy(adj), torch.from_numpy(weights), torch.from_numpy(1.0 - adj - np.eye(n))
        term2 = -torch.xlogy(adj_t * w_t, (1.0 - rho) * (1.0 - kappa) * mat + (1.0 - rho) * kappa).sum()
        term3 = -torch.xlogy(adj_1m, (1.0 - kappa) * (1.0 - rho) * (1.0 - mat) + rho).sum()
        return term2 + term3

    results = []
    for loss in (spectras, lambda: _spectra_graph.graph_loss(theta, eta, kappa, rho, graph)):
        value = loss()
        results.append((value.item(), torch.autograd.grad(value, (theta, eta, kappa, rho))))
    (theirs, their_grads), (ours, our_grads) = results
    assert ours == pytest.approx(theirs, rel=1e-12)
    for mine, reference in zip(our_grads, their_grads):
        torch.testing.assert_close(mine, reference, rtol=1e-10, atol=1e-12)


def test_gene_graph_rejects_what_spectra_does_not_build():
    from topiceval.adapters import _spectra_graph

    adj = np.zeros((3, 3))
    adj[0, 1] = adj[1, 0] = 1.0
    complement = 1.0 - adj - np.eye(3)
    as_t = torch.from_numpy
    with pytest.raises(ValueError, match="0 / 1"):
        _spectra_graph.GeneGraph(as_t(adj * 0.5), as_t(adj), as_t(complement))
    with pytest.raises(ValueError, match="diagonal"):
        _spectra_graph.GeneGraph(as_t(adj + np.eye(3)), as_t(adj), as_t(complement))
    with pytest.raises(ValueError, match="1 - adj_matrix"):
        _spectra_graph.GeneGraph(as_t(adj), as_t(adj), as_t(complement * 0.5))


def test_blocked_fit_follows_spectras_fit(pbmc, trained):
    """A fit with loss="blocked" is Spectra's fit to rounding: 300 epochs (three learning-rate
    drops) end at the same factors (measured: 2e-6 apart, about as far as Spectra's own fit on two
    threads is from it on one) and top genes; 25 epochs, those of ``trained``, too."""
    short = run(pbmc, loss="blocked", progress=False)
    np.testing.assert_allclose(short.outputs.topic_gene, trained.outputs.topic_gene, rtol=0, atol=1e-4)
    assert short.hyperparameters["loss"] == "blocked" and "loss" not in trained.info
    assert short.info["graph_edges"] > 0 and short.info["epochs_run"] == EPOCHS

    def fit(**options):
        return spectra.train(pbmc, TrainParams(n_topics=K, epochs=300, seed=0, options={
            "gene_sets": "hallmark", "progress": False, **options}))

    theirs, ours = fit(), fit(loss="blocked")
    assert ours.info["final_lr"] == 0.01 and ours.info["epochs_run"] == 300
    np.testing.assert_allclose(ours.outputs.topic_gene, theirs.outputs.topic_gene, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.outputs.cell_topic, theirs.outputs.cell_topic, rtol=0, atol=1e-3)
    # the top genes the metrics read (measured: all the same; a near tie may swap one)
    tops = [np.argsort(-fit.outputs.topic_gene, axis=1)[:, :10] for fit in (ours, theirs)]
    assert np.mean([len(set(a) & set(b)) for a, b in zip(*tops)]) >= 9
    with pytest.raises(InputError, match="loss must be one of"):
        run(pbmc, loss="dense")


def test_counts_are_log_normalised_as_spectra_recommends(pbmc):
    from_counts = run(pbmc, normalize="auto").outputs  # X is log-normalised already: used as is
    raw = spectra.train(pbmc, TrainParams(n_topics=K, epochs=EPOCHS, seed=0, layer="counts",
                                          options={"gene_sets": "hallmark"}))
    assert raw.hyperparameters["log_normalised_here"] is True
    counts = pbmc.layers["counts"].toarray().astype(np.float64)
    sizes = counts.sum(axis=1, keepdims=True)
    by_hand = pbmc.copy()
    by_hand.X = np.log1p(counts / sizes * np.median(sizes))
    manual = spectra.train(by_hand, TrainParams(n_topics=K, epochs=EPOCHS, seed=0,
                                                options={"gene_sets": "hallmark", "normalize": "none"}))
    np.testing.assert_allclose(raw.outputs.topic_gene, manual.outputs.topic_gene, rtol=1e-6)
    assert from_counts.topic_gene.shape == raw.outputs.topic_gene.shape


def test_default_prior_is_spectras_dictionary(pbmc):
    prior = spectra.load_prior(spectra.DEFAULT_PRIOR)
    assert prior.n_sets == 150 and "ALL_TYPE-I-IFN-RESPONSE" not in prior  # names kept, symbols upper-cased
    assert any(name.startswith("all_") for name in prior.names)
    result = spectra.train(pbmc, TrainParams(n_topics=K, epochs=5, seed=0))
    assert result.info["prior_gene_sets"]["content_sha256"] == prior.content_sha256
    assert result.hyperparameters["gene_sets"] == "spectra_default"
    # the scspectra import did not leave a pkg_resources stand-in behind
    module = sys.modules.get("pkg_resources")
    assert module is None or hasattr(module, "working_set")


def test_default_prior_reads_without_importing_spectra():
    """Reading Spectra's dictionary needs neither Spectra's import (torch, pkg_resources) nor a fit first."""
    import subprocess

    code = ("import sys; from topiceval.adapters import spectra; prior = spectra.load_prior('spectra_default'); "
            "print(prior.n_sets, 'Spectra' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["150", "False"]


def test_input_errors(pbmc, tmp_path):
    gmt = tmp_path / "none.gmt"
    gmt.write_text("SET_A\tx\tNOTAGENE1\tNOTAGENE2\tNOTAGENE3\n")
    with pytest.raises(InputError, match="no gene set of the prior"):
        run(pbmc, gene_sets=str(gmt))
    with pytest.raises(InputError, match="fewer than the"):
        run(pbmc, filter_sets=False)
    with pytest.raises(InputError, match="rho must be in"):
        run(pbmc, rho=2)
    with pytest.raises(InputError, match="normalize"):
        run(pbmc, normalize="zscore")


def test_train_cli_on_counts_and_report_flags_circular_scores(pbmc, tmp_path):
    """`topiceval train spectra --data counts.h5ad`, then a leaderboard whose report flags exactly the
    gene-set scores computed against the prior's collection."""
    from topiceval.leaderboard import config as lconfig
    from topiceval.leaderboard import report, runner

    counts = ad.AnnData(X=pbmc.layers["counts"].copy(), obs=pbmc.obs.copy(), var=pbmc.var[[]].copy())
    data = tmp_path / "counts.h5ad"
    counts.write_h5ad(data)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", "spectra", "--data", str(data), "--out", str(out), "--topics", str(K),
                     "--epochs", "5", "--label-key", "cell_type", "--set", "gene_sets=hallmark"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["info"]["prior_gene_sets"]["sha256"] == load("hallmark").sha256
    assert config["hyperparameters"]["log_normalised_here"] is True
    assert config["versions"]["scspectra"].startswith("0.2.")
    assert te.read_outputs(out / "outputs.h5ad").topic_gene.shape == (K, pbmc.n_vars)
    assert registry.get("spectra").extra == "spectra"

    raw = {
        "name": "prior", "seeds": [0],
        "datasets": [{"name": "pbmc", "path": str(data), "label_key": "cell_type", "species": "human",
                      "values": "counts"}],
        "preprocess": {"n_top_genes": 300},
        "train": {"models": ["spectra", "nmf"], "n_topics": K},
        "models": {"spectra": {"epochs": 5, "options": {"gene_sets": "hallmark"}}, "nmf": {"epochs": 50}},
        "collections": [{"name": "hallmark", "human": "hallmark", "metrics": ["tc", "td", "ip"]},
                        {"name": "reactome", "human": "reactome", "metrics": ["tc", "td"]}],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential",
                             progress=False)
    assert set(results.cells["status"]) == {"done"}
    flags = report.prior_flags(results)
    assert flags[["dataset", "model", "collection", "metrics"]].values.tolist() == [["pbmc", "spectra", "hallmark", "TC"]]
    written = report.write_report(results, tmp_path / "report", plots=False)
    summary = written["markdown"].read_text()
    assert "CIRCULAR: spectra on pbmc used the hallmark gene sets as its prior" in summary
    assert "CIRCULAR" in written["html"].read_text()
    # the flag survives writing and reading the results back
    again = runner.Results.read(tmp_path / "report")
    assert report.prior_flags(again).equals(flags)


def test_leaderboard_flags_collections_that_share_sets_with_the_prior(pbmc, tmp_path):
    """A prior of 4 Hallmark and 2 Reactome sets (verbatim) and 3 of no collection: scores against
    Hallmark and Reactome are flagged as partly circular, with the counts."""
    from topiceval.gene_sets import overlap
    from topiceval.leaderboard import config as lconfig
    from topiceval.leaderboard import report, runner

    genes = set(pbmc.var_names.str.upper())
    hallmark, reactome = load("hallmark"), load("reactome")

    def richest(collection, n):  # the sets with most genes in the data (Spectra keeps sets with >= 3)
        return sorted(collection.names, key=lambda name: -len(genes & set(collection[name])))[:n]

    rng = np.random.default_rng(0)
    names = sorted(genes)
    lines = [f"{n}\t\t" + "\t".join(hallmark[n]) for n in richest(hallmark, 4)]
    lines += [f"{n}\t\t" + "\t".join(reactome[n]) for n in richest(reactome, 2)]
    lines += [f"RANDOM_{i}\t\t" + "\t".join(rng.choice(names, 12, replace=False)) for i in range(3)]
    prior_file = tmp_path / "prior.gmt"
    prior_file.write_text("\n".join(lines) + "\n")
    expected = {c: overlap(load(str(prior_file)), load(c)) for c in ("hallmark", "reactome")}
    assert (expected["hallmark"]["identical"], expected["reactome"]["identical"]) == (4, 2)

    data = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(data)
    raw = {"name": "partly", "seeds": [0],
           "datasets": [{"name": "pbmc", "path": str(data), "label_key": "cell_type", "species": "human",
                         "values": "log_expression"}],
           "train": {"models": ["spectra"], "n_topics": 5},
           "models": {"spectra": {"epochs": 5, "options": {"gene_sets": str(prior_file)}}},
           "collections": [{"name": "hallmark", "human": "hallmark", "metrics": ["tc"]},
                           {"name": "reactome", "human": "reactome", "metrics": ["tc"]}]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential",
                             progress=False)
    assert list(results.cells["status"]) == ["done"]
    assert report.prior_flags(results).empty  # no collection is the prior itself
    flags = report.prior_overlaps(results).set_index("collection")
    for collection in ("hallmark", "reactome"):
        found = expected[collection]
        assert flags.loc[collection, ["n_sets", "identical", "similar"]].tolist() == [
            str(found["n_sets"]), str(found["identical"]), str(found["similar"])]
    summary = report.write_report(results, tmp_path / "report", plots=False)["markdown"].read_text()
    assert (f"PARTLY CIRCULAR: {expected['hallmark']['similar']} of the 9 gene sets of spectra's prior reappear "
            f"in hallmark ({expected['hallmark']['identical']} identical") in summary
    assert report.prior_overlaps(runner.Results.read(tmp_path / "report")).equals(report.prior_overlaps(results))


def test_adapter_modules_import_no_model_library():
    import subprocess

    code = ("import sys, topiceval.adapters.cnmf, topiceval.adapters.spectra\n"
            "print(sorted(m for m in ('torch', 'Spectra', 'cnmf', 'scanpy', 'pkg_resources') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
