"""The leaderboard runner: config parsing, cache and resume, backends, results, report, CLI."""

from __future__ import annotations

import base64
import json
import warnings
from html.parser import HTMLParser
from pathlib import Path

import leaderboard_models
import numpy as np
import pandas as pd
import pytest
from topiceval.adapters import registry

from topiceval.cli import main
from topiceval.errors import InputError
from topiceval.leaderboard import config as lconfig
from topiceval.leaderboard import report, runner


@pytest.fixture(scope="module")
def tiny_h5ad(tmp_path_factory) -> Path:
    """120 cells x 714 genes of counts drawn from 4 Hallmark topics, 4 cell types."""
    from topiceval import datasets

    adata = datasets.synthetic(n_cells=120, n_cell_types=4, n_topics=4, n_background_genes=100, seed=0)
    adata.obs = adata.obs[["cell_type"]]
    for key in ("true_cell_topic",):
        del adata.obsm[key]
    del adata.varm["true_topic_gene"]
    adata.uns = {}
    path = tmp_path_factory.mktemp("tiny") / "tiny.h5ad"
    adata.write_h5ad(path)
    return path


def tiny_config(path: Path, models, *, seeds=(0, 1), collections=None, evaluation=None, **extra) -> dict:
    return {
        "name": "tiny",
        "seeds": list(seeds),
        "datasets": [{"name": "tiny", "path": str(path), "label_key": "cell_type", "species": "human",
                      "values": "counts"}],
        "preprocess": {"n_top_genes": 300},
        "train": {"models": list(models), "n_topics": 4},
        "models": {m: {"epochs": 40} for m in models},
        "collections": collections or [
            {"name": "hallmark", "human": "hallmark", "metrics": ["tc", "td", "tq", "ip", "ora", "gsea", "clustering"]},
            {"name": "reactome", "human": "reactome", "metrics": ["tc", "td", "tq"]},
        ],
        "evaluation": evaluation or {"gsea_n_perm": 50, "cluster_resolutions": [0.3, 0.6, 1.0]},
        **extra,
    }


@pytest.fixture
def counting_model(monkeypatch):
    entry = registry.ModelEntry(name="counting", target="leaderboard_models:counting_nmf", extra=None,
                                requires=("sklearn",), description="NMF that counts its calls (tests)")
    monkeypatch.setitem(registry._REGISTRY, "counting", entry)
    leaderboard_models.reset()
    yield leaderboard_models
    leaderboard_models.reset()


# --------------------------------------------------------------------------- config
def test_config_from_toml(tmp_path):
    (tmp_path / "sets.gmt").write_text("A\tna\tX\tY\n")
    path = tmp_path / "lb.toml"
    path.write_text("""
name = "t"
seeds = [0, 2]
datasets = ["pollen", "ting"]
[train]
models = ["nmf", "lda"]
n_topics = 7
[models.lda]
epochs = 9
options = { learning_method = "online" }
[[collections]]
name = "mine"
human = "sets.gmt"
mouse = "shared:gene_sets/mouse.h.all.v7.1.symbols.gmt"
metrics = "tc,td"
[evaluation]
gsea_n_perm = 10
[output]
dir = "out"
""")
    config = lconfig.load_config(path)
    assert config.seeds == (0, 2)
    assert [d.name for d in config.datasets] == ["pollen", "ting"]
    assert config.model("nmf").n_topics == 7 and config.model("nmf").epochs is None
    assert config.model("lda").epochs == 9 and config.model("lda").options == {"learning_method": "online"}
    assert config.collections[0].metrics == ("tc", "td")
    assert config.out == tmp_path / "out"
    assert lconfig.resolve_gene_set_spec("sets.gmt", config.root) == str(tmp_path / "sets.gmt")
    assert lconfig.resolve_gene_set_spec("hallmark", config.root) == "hallmark"
    # every number-changing field enters the hash; run settings do not
    assert config.replace(n_jobs=2, backend="dask").sha256() == config.sha256()
    assert config.replace(evaluation={"gsea_n_perm": 11}).sha256() != config.sha256()
    assert config.replace(seeds=(0, 1)).sha256() != config.sha256()


@pytest.mark.parametrize("raw, message", [
    ({"datasets": ["nope"]}, "unknown dataset 'nope'"),
    ({"bogus": 1}, "unknown key"),
    ({"train": {"models": ["nmf", "zzz"]}}, "unknown model 'zzz'"),
    ({"models": {"lda": {"epochs": 3}}, "train": {"models": ["nmf"]}}, "not in train.models"),
    ({"models": {"nmf": {"epoch": 3}}}, "unknown key(s) in [models.nmf]"),
    ({"evaluation": {"gsea_nperm": 3}}, "unknown option"),
    ({"collections": [{"name": "c", "human": "hallmark", "metrics": ["tcc"]}]}, "unknown metric"),
    ({"seeds": []}, "seeds is empty"),
    ({"run": {"backend": "ray"}}, "run.backend"),
])
def test_config_errors(raw, message):
    base = {"datasets": ["pollen"], "train": {"models": ["nmf"]},
            "collections": [{"name": "h", "human": "hallmark"}]}
    base.update(raw)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        lconfig.load_config(base)


# --------------------------------------------------------------------------- cache and resume
def test_killed_run_resumes_without_recomputing(tiny_h5ad, tmp_path, counting_model):
    config = lconfig.load_config(tiny_config(
        tiny_h5ad, ["counting"], seeds=(0, 1, 2),
        collections=[{"name": "hallmark", "human": "hallmark", "metrics": ["tc", "td", "tq", "ip"]}]))
    cache = tmp_path / "cache"
    counting_model.INTERRUPT_AT = 2  # the second training is killed
    with pytest.raises(KeyboardInterrupt):
        runner.run(config, cache=cache, backend="sequential", progress=False)
    assert counting_model.CALLS == [0, 1]
    finished = [p for p in (cache / "runs").iterdir()]
    assert len(finished) == 1 and not finished[0].name.startswith(".")  # nothing half-written
    assert sorted(p.name for p in finished[0].iterdir()) == ["config.json", "outputs.h5ad"]

    counting_model.reset()
    results = runner.run(config, cache=cache, backend="sequential", progress=False, log=tmp_path / "run.log")
    assert sorted(counting_model.CALLS) == [1, 2]  # only the unfinished cells were trained
    cells = results.cells.set_index("seed")
    assert list(cells["status"]) == ["done"] * 3
    assert not cells.loc[0, "trained"] and cells.loc[1, "trained"] and cells.loc[2, "trained"]
    log = (tmp_path / "run.log").read_text()
    assert "tiny / counting / seed 0: done (cached run" in log and "seed 2: done (trained" in log

    counting_model.reset()
    again = runner.run(config, cache=cache, backend="sequential", progress=False)
    assert counting_model.CALLS == []
    pd.testing.assert_frame_equal(again.scores, results.scores)

    # a lost score is recomputed from the cached model, identical, without training
    score_dirs = list((cache / "scores").iterdir())
    assert len(score_dirs) == 3
    import shutil

    shutil.rmtree(score_dirs[0])
    third = runner.run(config, cache=cache, backend="sequential", progress=False)
    assert counting_model.CALLS == []
    pd.testing.assert_frame_equal(third.scores, results.scores)

    # refresh recomputes everything
    fourth = runner.run(config, cache=cache, backend="sequential", progress=False, refresh=True)
    assert sorted(counting_model.CALLS) == [0, 1, 2]
    pd.testing.assert_frame_equal(fourth.scores, results.scores)


def test_failed_and_skipped_cells_are_reported_not_cached(tiny_h5ad, tmp_path, counting_model, monkeypatch):
    missing = registry.ModelEntry(name="needs_lib", target="nowhere:train", extra="nolib",
                                  requires=("a_module_that_is_not_installed",), description="x")
    monkeypatch.setitem(registry._REGISTRY, "needs_lib", missing)
    raw = tiny_config(tiny_h5ad, ["counting", "needs_lib"], seeds=(0, 1),
                      collections=[{"name": "hallmark", "human": "hallmark", "metrics": ["tc"]}])
    raw["models"] = {"counting": {"epochs": 20}}
    config = lconfig.load_config(raw)
    counting_model.FAIL_SEED = 1
    results = runner.run(config, cache=tmp_path / "c", backend="sequential", progress=False, log=tmp_path / "run.log")
    cells = results.cells.set_index(["model", "seed"])
    assert cells.loc[("counting", 0), "status"] == "done"
    assert cells.loc[("counting", 1), "status"] == "failed"
    assert cells.loc[("counting", 1), "reason"] == "RuntimeError: simulated crash"
    assert cells.loc[("needs_lib", 0), "status"] == "skipped"
    assert 'pip install "topiceval[nolib]"' in cells.loc[("needs_lib", 0), "reason"]
    assert "Traceback" in (tmp_path / "run.log").read_text()
    assert set(results.scores["seed"]) == {0}
    counting_model.reset()
    runner.run(config, cache=tmp_path / "c", backend="sequential", progress=False)
    assert counting_model.CALLS == [1]  # the failed cell is retried, the finished one is not


def test_datasets_without_counts_or_matrix_are_skipped_with_reasons(tmp_path):
    config = lconfig.load_config({"datasets": ["yan", "wang"], "seeds": [0], "train": {"models": ["nmf"]},
                                  "collections": [{"name": "h", "human": "hallmark", "metrics": ["tc"]}]})
    results = runner.run(config, cache=tmp_path / "cache", backend="sequential", progress=False)
    reasons = results.cells.set_index("dataset")["reason"]
    assert list(results.cells["status"]) == ["skipped", "skipped"]
    assert reasons["wang"] == "dataset: no expression matrix (the distributed data hold cell types and a cell embedding only)"
    assert reasons["yan"].startswith("yan holds log expression, no raw counts: model 'nmf' trains on")
    assert results.scores.empty
    paths = report.write_report(results, tmp_path / "report")
    markdown = paths["markdown"].read_text()
    assert "| yan | nmf | 0 | skipped | yan holds log expression" in markdown
    assert "| wang | nmf | 0 | skipped | dataset: no expression matrix" in markdown
    # known before training, so a cache-only run says the same (not "missing")
    cached = runner.run(config, cache=tmp_path / "empty", backend="sequential", progress=False, cached_only=True)
    pd.testing.assert_frame_equal(cached.cells[["dataset", "model", "seed", "status", "reason"]],
                                  results.cells[["dataset", "model", "seed", "status", "reason"]])


def test_each_part_of_a_run_is_recorded_and_reported(tiny_h5ad, tmp_path, monkeypatch):
    from topiceval.leaderboard import history

    raw = tiny_config(tiny_h5ad, ["nmf"], seeds=(0,), collections=[{"name": "h", "human": "hallmark", "metrics": ["tc"]}])
    config = lconfig.load_config(raw)
    cache = tmp_path / "cache"
    monkeypatch.setattr(history, "HEARTBEAT_S", 0.02)  # the first part writes "alive" records while it trains
    runner.run(config, cache=cache, backend="sequential", progress=False)
    events = [json.loads(line)["event"] for line in history.history_file(cache, config.name).read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "end" and "alive" in events and events.count("cell") == 1
    monkeypatch.setattr(history, "HEARTBEAT_S", 60.0)
    runner.run(config, cache=cache, backend="sequential", progress=False)  # resumed: nothing to train
    results = runner.run(config, cache=cache, backend="sequential", progress=False, cached_only=True)
    parts = results.config["history"]
    assert len(parts) == 2 and all(p["complete"] for p in parts)  # a cache-only report adds no part
    assert [p["trained"] for p in parts] == [1, 0] and [p["finished"] for p in parts] == [1, 1]
    assert parts[0]["started"] <= parts[1]["started"] and parts[0]["wall_s"] > 0
    markdown = report.write_report(results, tmp_path / "report")["markdown"].read_text()
    assert "**Parts the run took**" in markdown
    assert "summed over 2 part(s) recorded in the cache's ledger, 1 cell(s) trained in them." in markdown
    assert json.loads((tmp_path / "report" / "results.json").read_text())["config"]["history"][0]["trained"] == 1


def test_a_published_report_stands_in_for_a_cache_on_another_machine(tiny_h5ad, tmp_path, counting_model, capsys):
    """A run on a machine whose cache is empty carries the published report's cells over instead
    of retraining them, trains only the rest, and gets the numbers of one unbroken run."""
    collections = [{"name": "hallmark", "human": "hallmark", "metrics": ["tc", "td", "tq", "ip"]}]
    raw = tiny_config(tiny_h5ad, ["counting"], seeds=(0, 1, 2), collections=collections)
    config = lconfig.load_config(raw)
    whole = runner.run(config, cache=tmp_path / "one", backend="sequential", progress=False)  # the reference
    first = runner.run(lconfig.load_config({**raw, "seeds": [0, 1]}), cache=tmp_path / "machine_a",
                       backend="sequential", progress=False)
    folder = tmp_path / "published"
    first.write(folder)

    counting_model.reset()
    results = runner.run(config, cache=tmp_path / "machine_b", backend="sequential", progress=False, published=folder)
    assert counting_model.CALLS == [2]  # seeds 0 and 1 carried over, not retrained
    cells = results.cells.set_index("seed")
    assert list(cells["status"]) == ["done"] * 3 and list(cells["source"]) == ["published", "published", "cache"]
    assert list(cells["trained"]) == [False, False, True]
    assert cells.loc[0, "train_s"] == pytest.approx(first.cells.set_index("seed").loc[0, "train_s"], rel=1e-9)  # then
    key = ["dataset", "model", "seed", "collection", "metric"]

    def without_stability(scores):
        return scores[scores["metric"] != "stability"].sort_values(key, ignore_index=True)

    # exact: the carried values come from results.json in full, not from the 10 digits of scores.csv
    pd.testing.assert_frame_equal(without_stability(results.scores), without_stability(whole.scores), check_exact=True)
    columns = ["dataset", "model", "seed", "collection", "topic"]
    pd.testing.assert_frame_equal(results.per_topic.sort_values(columns, ignore_index=True),
                                  whole.per_topic.sort_values(columns, ignore_index=True), check_dtype=False, rtol=1e-9)
    # stability: the pair of the two carried seeds as published; the two pairs with seed 2 need
    # seed 0's and 1's topic-gene matrices, which no report holds
    assert results.stability[["seed_a", "seed_b"]].values.tolist() == [[0, 1]]
    reference = whole.stability.set_index(["seed_a", "seed_b"]).loc[(0, 1), "stability"]
    assert results.stability["stability"].iloc[0] == pytest.approx(reference, rel=1e-9)
    # the history keeps the published part beside this machine's
    assert [p["part"] for p in results.config["history"]] == [first.config["history"][0]["part"],
                                                               results.config["history"][1]["part"]]
    markdown = report.write_report(results, tmp_path / "report", plots=False)["markdown"].read_text()
    assert "2 of the 3 finished cells (counting 2) are carried over from a published report" in markdown
    assert "Topic stability leaves out 2 seed pair(s) of one carried cell and one computed here" in markdown
    assert "summed over 2 part(s) recorded in the cache's ledger and in the published report" in markdown

    # another training setting is another train key: nothing is carried
    counting_model.reset()
    other = {**raw, "models": {"counting": {"epochs": 41}}}
    again = runner.run(lconfig.load_config(other), cache=tmp_path / "machine_c", backend="sequential",
                       progress=False, published=folder)
    assert sorted(counting_model.CALLS) == [0, 1, 2] and set(again.cells["source"]) == {"cache"}
    # other scoring cannot stand in at all
    with pytest.raises(InputError, match="scored with other evaluation than this config"):
        runner.run(lconfig.load_config({**raw, "evaluation": {"gsea_n_perm": 50, "top_n": 5}}),
                   cache=tmp_path / "machine_c", progress=False, published=folder)
    with pytest.raises(InputError, match="cannot be combined with refresh"):
        runner.run(config, cache=tmp_path / "machine_c", progress=False, published=folder, refresh=True)

    # the command line: --keep-published reads the report in --out, then replaces it
    lines = ['name = "tiny"', "seeds = [0, 1]",
             f'datasets = [{{ name = "tiny", path = "{tiny_h5ad}", label_key = "cell_type", species = "human", values = "counts" }}]',
             "[preprocess]", "n_top_genes = 300", "[train]", 'models = ["counting"]', "n_topics = 4",
             "[models.counting]", "epochs = 40", "[[collections]]", 'name = "hallmark"', 'human = "hallmark"',
             'metrics = ["tc", "td", "tq", "ip"]', "[evaluation]", "gsea_n_perm = 50",
             "cluster_resolutions = [0.3, 0.6, 1.0]"]
    (tmp_path / "lb.toml").write_text("\n".join(lines) + "\n")
    counting_model.reset()
    capsys.readouterr()
    assert main(["benchmark", "--config", str(tmp_path / "lb.toml"), "--out", str(folder), "--cache",
                 str(tmp_path / "machine_d"), "--backend", "sequential", "--keep-published", "--no-progress"]) == 0
    assert counting_model.CALLS == [] and "cells: 2 done" in capsys.readouterr().out
    assert set(pd.read_csv(folder / "cells.csv")["source"]) == {"published"}
    assert main(["benchmark", "--config", str(tmp_path / "lb.toml"), "--out", str(tmp_path / "nothing"),
                 "--cache", str(tmp_path / "machine_d"), "--keep-published", "--no-progress"]) == 2
    assert "no leaderboard results in" in capsys.readouterr().err


# --------------------------------------------------------------------------- backends and values
def test_a_cell_keeps_the_heap_while_it_trains_and_trims_it_after(tiny_h5ad, tmp_path, counting_model, monkeypatch):
    """The heap keeps freed memory through a training (tests/test_heap.py) and gives it back after."""
    from topiceval.adapters import _common

    events: list[tuple[str, int]] = []  # (call, trainings started by then)
    monkeypatch.setattr(_common, "retain_freed_memory", lambda: events.append(("retain", len(counting_model.CALLS))))
    monkeypatch.setattr(_common, "trim_heap", lambda: events.append(("trim", len(counting_model.CALLS))))
    config = lconfig.load_config(tiny_config(
        tiny_h5ad, ["counting"], seeds=(0,),
        collections=[{"name": "hallmark", "human": "hallmark", "metrics": ["td"]}]))
    runner.run(config, cache=tmp_path / "cache", backend="sequential", progress=False)
    assert events == [("retain", 0), ("trim", 1)]
    events.clear()
    runner.run(config, cache=tmp_path / "cache", backend="sequential", progress=False)
    assert events == [] and counting_model.CALLS == [0]  # a cached cell trains nothing


@pytest.fixture(scope="module")
def backend_results(tiny_h5ad, tmp_path_factory):
    config = lconfig.load_config(tiny_config(tiny_h5ad, ["nmf", "lda"]))
    root = tmp_path_factory.mktemp("backends")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for backend, jobs in (("sequential", 1), ("joblib", 2), ("dask", 2)):
            out[backend] = runner.run(config, cache=root / backend, backend=backend, n_jobs=jobs, progress=False)
    out["cache"] = root / "sequential"
    out["config"] = config
    return out


def test_backends_give_identical_numbers(backend_results):
    reference = backend_results["sequential"]
    assert len(reference.scores) > 0
    assert set(reference.cells["status"]) == {"done"}
    for backend in ("joblib", "dask"):
        other = backend_results[backend]
        pd.testing.assert_frame_equal(other.scores, reference.scores, check_exact=True)
        pd.testing.assert_frame_equal(other.per_topic, reference.per_topic, check_exact=True)


def test_resumable_models_get_a_checkpoint_in_the_cache(tiny_h5ad, tmp_path, monkeypatch):
    from topiceval.adapters import registry

    seen = {}

    def capture(model, data, out, *, params, overwrite):
        seen[model] = dict(params.options)
        raise RuntimeError("stop here")

    monkeypatch.setattr(registry, "train", capture)
    raw = tiny_config(tiny_h5ad, ["nmf", "dscigm"], seeds=(0,), collections=[{"name": "h", "human": "hallmark",
                                                                             "metrics": ["tc"]}])
    results = runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential", progress=False)
    assert set(results.cells["status"]) == {"failed"}
    key = results.cells.set_index("model").loc["dscigm", "train_key"]
    assert seen["dscigm"]["checkpoint"] == str((tmp_path / "cache").resolve() / runner.CHECKPOINT_DIR / key)
    assert "checkpoint" not in seen["nmf"]  # not resumable
    # --refresh starts a resumable cell over: its checkpoint goes with its cached run
    checkpoint = Path(seen["dscigm"]["checkpoint"])
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"state")
    runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential", progress=False)
    assert checkpoint.exists()  # a plain resume keeps it
    runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential", progress=False, refresh=True)
    assert not checkpoint.exists()
    assert all(registry.get(name).resumable for name in ("dscigm", "spectra", "cnmf"))
    assert not registry.get("nmf").resumable
    # cNMF's checkpoint is a folder: --refresh removes that too
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text("{}")
    runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential", progress=False, refresh=True)
    assert not checkpoint.exists()


def test_a_resumed_fit_reports_the_training_time_of_all_its_processes(tiny_h5ad, tmp_path, monkeypatch):
    from topiceval.adapters import registry

    def fake(model, data, out, *, params, overwrite):  # a run folder whose fit resumed after 30 s elsewhere
        Path(out).mkdir(parents=True)
        (Path(out) / registry.CONFIG_FILE).write_text(json.dumps({"timings": {"fit_s": 12.5, "resumed_fit_s": 30.0}}))

    monkeypatch.setattr(registry, "train", fake)
    raw = tiny_config(tiny_h5ad, ["dscigm"], seeds=(0,), collections=[{"name": "h", "human": "hallmark",
                                                                      "metrics": ["tc"]}])
    results = runner.run(lconfig.load_config(raw), cache=tmp_path / "cache", backend="sequential", progress=False)
    assert results.cells["train_s"].tolist() == [42.5]  # scoring then fails: the folder holds no outputs


def test_joblib_hands_out_one_cell_at_a_time(monkeypatch):
    """joblib's automatic batching, grown on a resumed run's instant cached cells, would give the
    next slow cells to one worker as one batch (run in turn while the other worker idles)."""
    import joblib

    seen = {}

    class Recording:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def __call__(self, jobs):
            return [function(*args, **kwargs) for function, args, kwargs in jobs]

    monkeypatch.setattr(joblib, "Parallel", Recording)
    monkeypatch.setattr(runner, "run_cell", lambda task: task)
    assert list(runner._joblib(["a", "b", "c"], 2, None)) == ["a", "b", "c"]
    assert seen["batch_size"] == 1 and seen["pre_dispatch"] == "n_jobs" and seen["n_jobs"] == 2


def test_scores_are_those_of_the_registry_trainer_and_evaluate(backend_results, tiny_h5ad):
    """Independent path: preprocess, train NMF directly, evaluate; the leaderboard's numbers match."""
    import anndata
    from topiceval.adapters import nmf

    from topiceval import datasets, evaluate

    adata = datasets.preprocess(anndata.read_h5ad(tiny_h5ad), n_top_genes=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs = nmf.train(adata, registry.TrainParams(n_topics=4, epochs=40, seed=1)).outputs
        expected = evaluate(outputs, gene_sets="hallmark", labels=adata.obs["cell_type"].astype(str).to_numpy(),
                            metrics="tc,td,tq,ip,ora,gsea,clustering", gsea_n_perm=50,
                            cluster_resolutions=(0.3, 0.6, 1.0))
    scores = backend_results["sequential"].scores
    got = scores[(scores["model"] == "nmf") & (scores["seed"] == 1) & (scores["collection"] == "hallmark")]
    got = got[got["metric"] != "stability"].set_index("metric")["value"]  # stability: test_stability_...
    assert list(got.index) == list(expected.scores.index)
    np.testing.assert_array_equal(got.to_numpy(), expected.scores.to_numpy())


def test_summary_is_mean_and_sample_sd_over_seeds(backend_results):
    results = backend_results["sequential"]
    summary = results.summary().set_index(["dataset", "collection", "model", "metric"])
    values = results.scores.query("model == 'lda' and collection == 'hallmark' and metric == 'TC'")["value"].to_numpy()
    row = summary.loc[("tiny", "hallmark", "lda", "TC")]
    assert row["n"] == 2
    assert row["mean"] == pytest.approx((values[0] + values[1]) / 2, rel=1e-12)
    assert row["sd"] == pytest.approx(abs(values[0] - values[1]) / np.sqrt(2), rel=1e-12)


def test_results_round_trip_and_baseline_entries(backend_results, tmp_path):
    results = backend_results["sequential"]
    results.write(tmp_path)
    back = runner.Results.read(tmp_path)
    pd.testing.assert_frame_equal(back.scores, results.scores, check_exact=False, rtol=1e-9)
    entries = results.baseline_entries()
    assert len(entries) == 2 * 2 * 2  # models x seeds x collections
    keys = {e["key"] for e in entries}
    assert "tiny/nmf/seed0/hallmark" in keys
    hallmark = next(e for e in entries if e["key"] == "tiny/nmf/seed0/hallmark")
    reactome = next(e for e in entries if e["key"] == "tiny/nmf/seed0/reactome")
    assert set(hallmark["scores"]) >= {"TC", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI"}
    assert hallmark["config_sha256"] != reactome["config_sha256"]


def test_results_read_back_write_the_same_files(backend_results, tmp_path):
    """A report redrawn from its own files (--report-only, --keep-published) writes what the run
    wrote, byte for byte: the cells and the stability pairs are read in full, not from the
    10-digit CSV files, and empty fields stay empty."""
    results = backend_results["sequential"]
    assert not results.stability.empty  # two seeds: the pairs are part of what is compared
    results.write(tmp_path / "first")
    runner.Results.read(tmp_path / "first").write(tmp_path / "second")
    for name in runner.Results.FILES:
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes(), name


# --------------------------------------------------------------------------- report
class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "header": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
            if tag == "th":
                self.tables[-1]["header"] = self._row
        elif tag == "tr" and self._row is not None:
            if self._row is not self.tables[-1]["header"]:
                self.tables[-1]["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_report_html_is_complete_and_self_contained(backend_results, tmp_path):
    results = backend_results["sequential"]
    paths = report.write_report(results, tmp_path)
    page = _Page()
    text = paths["html"].read_text()
    page.feed(text)
    assert "http://" not in text and "https://" not in text  # no external resource
    # reactome: only TC/TD/TQ -> heatmaps, results table; hallmark: scatter, heatmaps, enrichment
    # bars, results table (topiceval.pl.results_table), pathways; topic stability (two seeds,
    # topiceval.pl.stability)
    assert len(page.images) == 8
    assert sum(image["alt"] == "topic stability of every seed pair" for image in page.images) == 1
    assert sum("Results table on tiny" in image["alt"] for image in page.images) == 2
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(image["src"].split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
        assert image["alt"]
    ranked = [t for t in page.tables if "ranked-tiny-hallmark" in t["class"]]
    assert len(ranked) == 1
    table = ranked[0]
    assert table["header"] == ["model", "metric rank", "TC", "TD", "TQ", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI", "seeds"]
    assert sorted(row[0] for row in table["rows"]) == ["lda", "nmf"]
    summary = results.summary().set_index(["collection", "model", "metric"])
    for row in table["rows"]:
        for metric, cell in zip(table["header"][2:-1], row[2:-1], strict=True):
            stats = summary.loc[("hallmark", row[0], metric)]
            assert cell == report.format_value(stats["mean"], stats["sd"])
        assert row[-1] == "2"
    reactome = next(t for t in page.tables if "ranked-tiny-reactome" in t["class"])
    assert reactome["header"] == ["model", "metric rank", "TC", "TD", "TQ", "seeds"]
    genes = [t for t in page.tables if t["class"] == "genes"]
    assert len(genes) == 2 and all(len(t["rows"]) == 4 for t in genes)  # 2 models x 4 topics
    per_topic = results.per_topic
    first = per_topic[(per_topic["model"] == "nmf") & (per_topic["seed"] == 0) & (per_topic["collection"] == "hallmark")]
    assert [r[1] for r in genes[0]["rows"]] == list(first.sort_values("topic")["top_genes"])  # nmf comes first
    markdown = paths["markdown"].read_text()
    assert "| model | metric rank | TC | TD | TQ | IP | ORA_Q | GSEA_Q | ARI | NMI | seeds |" in markdown
    for name in runner.Results.FILES:
        assert (tmp_path / name).is_file()
    assert (tmp_path / "index.html").stat().st_mode & 0o044  # readable like a normal file


def test_ranking_is_the_mean_rank_over_the_rank_metrics(backend_results):
    results = backend_results["sequential"]
    table = report.ranked_table(results, "tiny", "hallmark")
    metrics = ["TQ", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI"]
    nmf_better = sum(table.loc["nmf", m] > table.loc["lda", m] for m in metrics)
    ties = sum(table.loc["nmf", m] == table.loc["lda", m] for m in metrics)
    assert table.loc["nmf", "rank"] == pytest.approx((1 * nmf_better + 2 * (6 - nmf_better - ties) + 1.5 * ties) / 6)
    assert list(table.index) == sorted(table.index, key=lambda m: table.loc[m, "rank"])
    assert report.format_value(0.12345, 0.01) == "0.123 ± 0.010"
    assert report.format_value(362.0, np.nan) == "362"
    assert report.format_value(np.nan) == "–"


# --------------------------------------------------------------------------- statistics (issue 18)
def test_stability_over_seed_pairs(backend_results):
    """Stability of the two seeds' topics, against a brute-force matching of sklearn cosines."""
    import itertools

    from sklearn.metrics.pairwise import cosine_similarity

    from topiceval.io import read_outputs_h5ad

    results = backend_results["sequential"]
    cells = results.cells.set_index(["model", "seed"])
    pairs = results.stability.set_index(["dataset", "model"])
    summary = results.summary().set_index(["dataset", "collection", "model", "metric"])
    for model in ("nmf", "lda"):
        a, b = (read_outputs_h5ad(backend_results["cache"] / "runs" / cells.loc[(model, s), "train_key"]
                                  / "outputs.h5ad").topic_gene for s in (0, 1))
        sim = cosine_similarity(a, b)
        best = max(np.mean(sim[np.arange(4), list(p)]) for p in itertools.permutations(range(4)))
        row = pairs.loc[("tiny", model)]
        assert (row["seed_a"], row["seed_b"], row["n_matched"]) == (0, 1, 4)
        assert row["stability"] == pytest.approx(best, rel=1e-12)
        for collection in ("hallmark", "reactome"):
            stats = summary.loc[("tiny", collection, model, "stability")]
            assert stats["mean"] == pytest.approx(best, rel=1e-12) and stats["n"] == 1 and np.isnan(stats["sd"])
            per_seed = results.scores.query("model == @model and metric == 'stability' and collection == @collection")
            np.testing.assert_allclose(per_seed["value"], [best, best], rtol=1e-12)


def test_comparisons_csv_is_wilcoxon_over_dataset_seed_pairs(backend_results, tmp_path):
    from scipy.stats import wilcoxon

    results = backend_results["sequential"]
    results.write(tmp_path)
    table = pd.read_csv(tmp_path / "comparisons.csv")
    assert list(table.columns) == ["metric", "model_a", "model_b", "n", "mean_diff", "statistic", "pvalue",
                                   "pvalue_holm"]
    # hallmark comes first: its metrics keep their names; reactome's TC and TQ are suffixed; TD, IP, ... once
    assert {"TC", "TQ", "TD", "IP", "ARI", "TC@reactome", "TQ@reactome"} <= set(table["metric"])
    assert "TD@reactome" not in set(table["metric"]) and "stability" not in set(table["metric"])
    scores = results.scores.query("collection == 'hallmark' and metric == 'TC'")
    wide = scores.pivot(index="seed", columns="model", values="value")
    diff = (wide["nmf"] - wide["lda"]).to_numpy()
    row = table[table["metric"] == "TC"].iloc[0]
    assert (row["model_a"], row["model_b"], row["n"]) == ("nmf", "lda", 2)
    assert row["mean_diff"] == pytest.approx(diff.mean(), rel=1e-9)
    expected = wilcoxon(diff)
    assert row["statistic"] == pytest.approx(expected.statistic)
    assert row["pvalue"] == pytest.approx(expected.pvalue)
    assert row["pvalue_holm"] == pytest.approx(expected.pvalue)  # one pair of models: nothing to adjust


def _hand_results() -> runner.Results:
    """Hand-built scores: 3 models on 4 datasets x 2 seeds; 'a' > 'b' > 'c' on most datasets."""
    rows = []
    values = {"d1": (0.9, 0.5, 0.1), "d2": (0.8, 0.2, 0.4), "d3": (0.5, 0.7, 0.3), "d4": (0.6, 0.4, 0.2)}
    for dataset, triple in values.items():
        for seed in (0, 1):
            for model, value in zip("abc", triple, strict=True):
                for metric, offset in (("TQ", 0.0), ("IP", 0.01 * seed)):
                    rows.append({"dataset": dataset, "species": "human", "model": model, "seed": seed,
                                 "collection": "c2", "metric": metric, "value": value + offset,
                                 "config_sha256": "x"})
    config = {"name": "hand", "seeds": [0, 1], "models": [{"name": m} for m in "abc"],
              "datasets": [{"name": d} for d in values], "collections": [{"name": "c2", "metrics": ["tq", "ip"]}],
              "rank_by": ["TQ", "IP"]}
    return runner.Results(config=config, cells=pd.DataFrame(columns=runner._CELL_COLUMNS),
                          scores=pd.DataFrame(rows), per_topic=pd.DataFrame(columns=runner._TOPIC_COLUMNS),
                          pathways=pd.DataFrame(columns=runner._PATHWAY_COLUMNS))


def test_report_renders_friedman_cd_and_statements(tmp_path):
    from scipy.stats import friedmanchisquare

    from topiceval.leaderboard import statistics

    results = _hand_results()
    result, ranks = statistics.friedman_overall(results, "c2")
    # per-dataset ranks of the overall ranking: a 1,1,2,1 / b 2,3,1,2 / c 3,2,3,3 (TQ and IP agree)
    np.testing.assert_allclose(ranks.loc[["d1", "d2", "d3", "d4"], "a"], [1, 1, 2, 1])
    assert result.statistic == pytest.approx(friedmanchisquare(*(-ranks[c] for c in ranks.columns)).statistic)
    assert result.statistic == pytest.approx(4.5)
    paths = report.write_report(results, tmp_path)
    markdown = paths["markdown"].read_text()
    assert "## Statistical comparison" in markdown and "## Topic stability" in markdown
    assert "Friedman chi-square = 4.5, p = 0.11 over 4 datasets" in markdown
    assert "| TQ | a beats c | 8 | 0.45 |" in markdown  # (0.8 + 0.4 + 0.2 + 0.4) / 4
    page = _Page()
    page.feed(paths["html"].read_text())
    assert any(i["alt"] == "Critical-difference diagram (c2)" for i in page.images)
    statements = next(t for t in page.tables if t["class"] == "comparisons")
    table = pd.read_csv(tmp_path / "comparisons.csv")
    a_c = table[(table["metric"] == "TQ") & (table["model_a"] == "a") & (table["model_b"] == "c")].iloc[0]
    row = next(r for r in statements["rows"] if r[:2] == ["TQ", "a beats c"])
    assert row[4] == statistics._p(a_c["pvalue"]) and row[5] == statistics._p(a_c["pvalue_holm"])


# --------------------------------------------------------------------------- CLI
def test_benchmark_cli_writes_report_and_baseline(tiny_h5ad, tmp_path, capsys):
    lines = ['name = "cli"', "seeds = [0]",
             f'datasets = [{{ name = "tiny", path = "{tiny_h5ad}", label_key = "cell_type", species = "human", values = "counts" }}]',
             "[preprocess]", "n_top_genes = 300", "[train]", 'models = ["nmf"]', "n_topics = 4",
             "[models.nmf]", "epochs = 30", "[[collections]]", 'name = "hallmark"', 'human = "hallmark"',
             'metrics = ["tc", "td", "tq", "ip"]', "[run]", 'backend = "sequential"', "[output]", 'dir = "report"']
    (tmp_path / "lb.toml").write_text("\n".join(lines) + "\n")
    code = main(["benchmark", "--config", str(tmp_path / "lb.toml"), "--cache", str(tmp_path / "cache"),
                 "--no-progress", "--baseline-out", str(tmp_path / "baseline.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "tiny (hallmark gene sets)" in out and "nmf" in out
    assert (tmp_path / "report" / "index.html").is_file() and (tmp_path / "report" / "run.log").is_file()
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    assert baseline["format"] == "topiceval-baseline" and baseline["version"] == 1
    assert [e["key"] for e in baseline["entries"]] == ["tiny/nmf/seed0/hallmark"]
    # the results regress cleanly against their own baseline
    assert main(["regress", "--baseline", str(tmp_path / "baseline.json"), "--current", str(tmp_path / "report")]) == 0
    # --report-only redraws from the CSV / JSON without training
    (tmp_path / "report" / "index.html").unlink()
    assert main(["benchmark", "--config", str(tmp_path / "lb.toml"), "--report-only"]) == 0
    assert (tmp_path / "report" / "index.html").is_file()


def test_benchmark_with_a_missing_file_starts_nothing_and_leaves_no_report_folder(tmp_path, capsys):
    """Every path of the config is checked before any work: no report folder with only run.log."""
    lines = ['name = "missing"', "seeds = [0]",
             f'datasets = [{{ name = "gone", path = "{tmp_path / "absent.h5ad"}", label_key = "cell_type", '
             'species = "human", values = "counts" }]',
             "[train]", 'models = ["nmf"]', "[[collections]]", 'name = "mine"', 'human = "sets/mine.gmt"',
             'metrics = ["tc"]', "[run]", 'backend = "sequential"', "[output]", 'dir = "report"']
    (tmp_path / "lb.toml").write_text("\n".join(lines) + "\n")
    code = main(["benchmark", "--config", str(tmp_path / "lb.toml"), "--cache", str(tmp_path / "cache"),
                 "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "2 file(s)" in err and str(tmp_path / "absent.h5ad") in err and str(tmp_path / "sets" / "mine.gmt") in err
    assert not (tmp_path / "report").exists() and not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- report, read as a biologist would
def _one_seed(results):
    keep = {name: getattr(results, name) for name in ("cells", "scores", "per_topic", "pathways")}
    return runner.Results(config=results.config, **{k: v[v["seed"] == 0].copy() for k, v in keep.items()})


def _figures(monkeypatch):
    drawn = []
    monkeypatch.setattr(report, "_png", lambda fig: drawn.append(fig) or "AAAA")
    return drawn


def test_counts_print_as_integers_and_the_two_rankings_have_distinct_names(backend_results, tmp_path):
    results = backend_results["sequential"]
    assert report.format_value(8.0, np.nan, integer=True) == "8"
    assert report.format_value(8.0, 0.0, integer=True) == "8 ± 0"
    assert report.format_value(7.5, 0.7071, integer=True) == "7.5 ± 0.7"
    counts = report.count_metrics(results)
    assert {"ORA_N", "GSEA_N"} <= counts and not counts & {"TC", "TD", "IP", "ORA_Q"}
    page = _Page()
    page.feed(report.write_report(results, tmp_path)["html"].read_text())
    overall = next(t for t in page.tables if t["class"] == "overall")
    assert overall["header"][:4] == ["model", "mean placing", "datasets", "wins"]
    assert overall["header"][4:] == ["placing on tiny"]
    full = next(t for t in page.tables if t["class"] == "full")
    column = full["header"].index("ORA_N")
    summary = results.summary().set_index(["collection", "model", "metric"])
    for row in full["rows"]:
        stats = summary.loc[("hallmark", row[0], "ORA_N")]
        assert row[column] == report.format_value(stats["mean"], stats["sd"], integer=True)
        assert not row[column].endswith(".000")
    assert all("rank" != h for t in page.tables for h in t["header"])


def test_warnings_are_shown_under_the_numbers_they_qualify(backend_results, tmp_path):
    results = backend_results["sequential"]
    assert "warnings" in results.cells.columns
    cells = results.cells.copy()
    cells["warnings"] = ""
    first = cells.index[(cells["model"] == "nmf") & (cells["seed"] == 0)][0]
    cells.loc[first, "warnings"] = ("[hallmark] GSEA: the ranking of 3 topic(s) is mostly ties\n"
                                    "[reactome] only 23 % of genes in reactome\nConvergenceWarning: nmf: did not converge")
    flagged = runner.Results(config=results.config, cells=cells, scores=results.scores,
                             per_topic=results.per_topic, pathways=results.pathways)
    text = report.write_report(flagged, tmp_path, plots=False)["html"].read_text()
    hallmark = text[text.index("ranked-tiny-hallmark"):text.index("ranked-tiny-reactome")]
    reactome = text[text.index("ranked-tiny-reactome"):]
    assert "<b>nmf (seed 0)</b>: GSEA: the ranking of 3 topic(s) is mostly ties" in hallmark
    assert "23 %" not in hallmark and "only 23 % of genes in reactome" in reactome.split("</ul>")[0]
    assert "did not converge" in hallmark and "did not converge" in reactome  # training: every table
    markdown = (tmp_path / "summary.md").read_text()
    assert "- warning, nmf (seed 0): GSEA: the ranking of 3 topic(s) is mostly ties" in markdown


def test_heatmaps_have_colour_bars_and_readable_text(backend_results, monkeypatch):
    drawn = _figures(monkeypatch)
    results = backend_results["sequential"]
    assert report.plot_heatmaps(results, "hallmark", metrics=("TC", "ORA_N", "GSEA_N")) == "AAAA"
    fig = drawn[-1]
    panels = [ax for ax in fig.axes if ax.get_title()]
    bars = [ax for ax in fig.axes if not ax.get_title()]
    assert len(panels) == len(bars) > 1  # one colour bar per panel
    sizes = {t.get_fontsize() for ax in panels for t in ax.texts}
    assert min(sizes) >= 9  # about 12 px at the report's 100 dpi
    assert "own colour scale" in fig._suptitle.get_text()
    ora = next(ax for ax in panels if ax.get_title() == "ORA_N")
    assert all(not t.get_text().endswith(".000") for t in ora.texts)


def test_enrichment_bars_have_integer_ticks_and_error_bars_only_with_seeds(backend_results, monkeypatch):
    drawn = _figures(monkeypatch)
    results = backend_results["sequential"]
    report.plot_enrichment(results, "hallmark")
    def bars(ax):
        return [c for c in ax.containers if type(c).__name__ == "BarContainer"]

    two = drawn[-1].axes[0]
    assert bars(two) and any(c.errorbar is not None for c in bars(two))
    assert two.yaxis.get_major_locator()._integer
    report.plot_enrichment(_one_seed(results), "hallmark")
    one = drawn[-1].axes[0]
    assert bars(one) and all(c.errorbar is None for c in bars(one))
    assert "no error bars" in drawn[-1]._suptitle.get_text()


def test_scatter_legends_say_what_they_explain(backend_results, monkeypatch):
    drawn = _figures(monkeypatch)
    report.plot_scatter(backend_results["sequential"], "hallmark")
    ax = drawn[-1].axes[0]
    titles = {artist.get_title().get_text() for artist in ax.get_children()
              if type(artist).__name__ == "Legend"}
    assert titles == {"model (colour)", "dataset (marker)"}


def test_models_without_pathway_hits_say_none_and_names_show_in_full(backend_results, monkeypatch):
    results = backend_results["sequential"]
    pathways = results.pathways
    gsea = pathways[(pathways["method"] == "GSEA") & (pathways["collection"] == "hallmark")]
    assert not gsea.empty
    without = runner.Results(config=results.config, cells=results.cells, scores=results.scores,
                             per_topic=results.per_topic, pathways=pathways[~((pathways["model"] == "nmf")
                                                                              & (pathways["method"] == "GSEA"))])
    names = report._pathway_names_html(without, "tiny", "hallmark")
    assert "<td>nmf</td><td>none</td>" in names
    drawn = _figures(monkeypatch)
    report.plot_pathways(without, "tiny", "hallmark")
    panel = next(ax for ax in drawn[-1].axes if ax.get_title() == "nmf")
    assert "none" in panel.texts[0].get_text()
    full = report._pathway_names_html(results, "tiny", "hallmark")
    for term in gsea[gsea["seed"] == gsea["seed"].min()].groupby("model").head(8)["term"]:
        assert f'title="{term}"' in full


# --------------------------------------------------------------------------- combined collections, order
def test_a_list_of_gene_set_files_is_one_collection_their_union(tiny_h5ad, tmp_path):
    """TC against ["hallmark", "reactome"] is TC against the union of the two, computed by evaluate."""
    import anndata
    from topiceval.adapters import nmf

    from topiceval import datasets, evaluate
    from topiceval.gene_sets import load

    raw = tiny_config(tiny_h5ad, ["nmf"], seeds=(0,), collections=[
        {"name": "both", "human": ["hallmark", "reactome"], "metrics": ["tc", "td", "tq"]}])
    config = lconfig.load_config(raw)
    assert config.collections[0].sources == {"human": ("hallmark", "reactome")}
    assert lconfig.resolve_gene_set_spec(["hallmark", "x.gmt"], tmp_path) == ("hallmark", str(tmp_path / "x.gmt"))
    results = runner.run(config, cache=tmp_path / "cache", backend="sequential", progress=False)
    got = results.scores.set_index("metric")["value"]

    adata = datasets.preprocess(anndata.read_h5ad(tiny_h5ad), n_top_genes=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs = nmf.train(adata, registry.TrainParams(n_topics=4, epochs=40, seed=0)).outputs
        union = load({**load("hallmark").to_dict(), **load("reactome").to_dict()})
        expected = evaluate(outputs, gene_sets=union, metrics="tc,td,tq")
        hallmark_only = evaluate(outputs, gene_sets="hallmark", metrics="tc")
    assert got["TC"] == pytest.approx(expected.scores["TC"], rel=1e-12)
    assert got["TC"] != pytest.approx(hallmark_only.scores["TC"], rel=1e-6)
    record = results.config["gene_sets"]["both"]["human"]
    assert record["n_sets"] == union.n_sets and record["content_sha256"] == union.content_sha256
    paths = report.write_report(results, tmp_path / "report", plots=False)
    assert "| both | human | hallmark + reactome |" in paths["markdown"].read_text()

    # a missing part stops the run before anything starts
    bad = lconfig.load_config({**raw, "collections": [{"name": "both", "human": ["hallmark", "nope.gmt"]}]},
                              root=tmp_path)
    with pytest.raises(InputError, match=r"collection 'both' \(human\): .*nope.gmt"):
        runner.run(bad, cache=tmp_path / "cache2", backend="sequential", progress=False)
    with pytest.raises(InputError, match="non-empty list of specs"):
        lconfig.load_config({**raw, "collections": [{"name": "both", "human": []}]})


def test_run_order_model_runs_model_by_model(tiny_h5ad, tmp_path, monkeypatch):
    """order = "model": every cell of the first model (largest dataset first), then the next model's."""
    import anndata

    small = tmp_path / "small.h5ad"
    adata = anndata.read_h5ad(tiny_h5ad)
    adata[:60].copy().write_h5ad(small)
    raw = tiny_config(tiny_h5ad, ["lda", "nmf"], seeds=(0,),
                      collections=[{"name": "hallmark", "human": "hallmark", "metrics": ["td"]}])
    raw["datasets"].append({"name": "small", "path": str(small), "label_key": "cell_type", "species": "human",
                            "values": "counts"})
    seen: list[tuple[str, str]] = []

    def record(tasks, n_jobs, scheduler):
        for task in tasks:
            seen.append((task.dataset.name, task.model.name))
            yield runner.run_cell(task)

    monkeypatch.setitem(runner._BACKENDS, "sequential", record)
    runner.run(lconfig.load_config({**raw, "run": {"order": "model"}}), cache=tmp_path / "c",
               backend="sequential", progress=False)
    assert seen == [("tiny", "lda"), ("small", "lda"), ("tiny", "nmf"), ("small", "nmf")]
    seen.clear()
    config = lconfig.load_config(raw)
    assert config.order == "size"
    runner.run(config, cache=tmp_path / "c", backend="sequential", progress=False)
    assert seen == [("tiny", "lda"), ("tiny", "nmf"), ("small", "lda"), ("small", "nmf")]
    assert config.replace(order="model").sha256() == config.sha256()  # changes no number
    with pytest.raises(InputError, match="run.order must be one of size, model"):
        lconfig.load_config({**raw, "run": {"order": "random"}})


def test_score_keys_carry_symbol_and_id_matches_only_where_there_are_some(tmp_path):
    """A dataset whose genes match the collection as written keeps its score keys; one with
    SYMBOL_ENSG... names (matched by symbol) gets keys that say which genes were matched so."""
    import anndata

    paths = {}
    for name, genes in {"plain": ["CCL5", "PTPRC", "NOT_A_GENE"],
                        "suffixed": ["CCL5_ENSG00000161570", "PTPRC", "NOT_A_GENE_ENSG00000000001"]}.items():
        paths[name] = tmp_path / f"{name}.h5ad"
        anndata.AnnData(np.zeros((2, 3), dtype=np.float32), var=pd.DataFrame(index=genes)).write_h5ad(paths[name])
    base = runner._gene_set_identity("hallmark", "human", None, None)
    assert set(base) == {"content_sha256", "case", "filters", "species_match"}
    assert runner._gene_set_identity("hallmark", "human", None, None, str(paths["plain"])) == base
    suffixed = runner._gene_set_identity("hallmark", "human", None, None, str(paths["suffixed"]))
    assert suffixed == {**base, "symbol_aliases": lconfig.stable_hash({"CCL5_ENSG00000161570": "CCL5"})}
