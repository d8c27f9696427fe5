"""``topiceval demo``: train scE2TM and the NMF / LDA baselines on the shipped dataset, score them
with every metric, write an HTML report and print the leaderboard.

The demo is a small leaderboard (:func:`demo_config`) run by :func:`topiceval.leaderboard.run`:
the shipped Pollen et al. 2014 data (:func:`topiceval.datasets.load_default`, 299 cells x 5000
genes, 11 cell types), K = 20 topics (paper: 100), one seed, scE2TM for the paper's 500 epochs
(one minibatch per epoch on 299 cells), NMF and LDA with their adapters' default iterations, the
shipped Reactome collection for TC, ORA and GSEA (and ARI / NMI when python-igraph is installed)
and the shipped Hallmark collection for TC. Every seed is fixed, so the printed numbers are the
same on every run (on one machine; BLAS builds can change the last digits).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from topiceval._utils import PathLike, as_path

from .config import LeaderboardConfig, load_config

__all__ = ["DEMO_MODELS", "demo_config", "run_demo"]

#: Models trained by default (others: ``models=["sce2tm", "nmf", "lda", "scetm"]`` or "installed").
DEMO_MODELS = ("sce2tm", "nmf", "lda")

#: Epochs (solver iterations for NMF / LDA) per model, as in reports/leaderboard; others use 100.
_EPOCHS = {"sce2tm": 500, "nmf": 400, "lda": 50, "scetm": 300, "ldvae": 200, "dscigm": 100}
_OPTIONS: dict[str, dict[str, Any]] = {"sce2tm": {"progress": False}}


def demo_config(models: Sequence[str] | str = DEMO_MODELS, *, n_topics: int = 20, quick: bool = False,
                n_jobs: int | None = None) -> LeaderboardConfig:
    """The demo's leaderboard configuration.

    Parameters
    ----------
    models
        Registered model names, or ``"installed"`` (every registered model whose extra is
        installed).
    n_topics
        Topics per model.
    quick
        Tiny schedules (5 topics, 5 epochs, 100 GSEA permutations, two clustering resolutions) for
        a smoke test in seconds; the numbers mean nothing.
    n_jobs
        Parallel cells (default: 2, or 1 on a single-CPU machine).
    """
    from topiceval.adapters import registry

    if models == "installed":
        names = [e.name for e in registry.available() if not e.missing() and e.kind == "topic"]
    elif isinstance(models, str):
        names = [m.strip() for m in models.split(",") if m.strip()]
    else:
        names = list(models)
    topics = 5 if quick else n_topics
    settings = {}
    for name in names:
        epochs = 5 if quick else _EPOCHS.get(registry.get(name).name, 100)
        settings[name] = {"n_topics": topics, "epochs": epochs, "options": dict(_OPTIONS.get(name, {}))}
    evaluation: dict[str, Any] = {"top_n": 10, "seed": 0}
    if quick:
        evaluation.update(gsea_n_perm=100, cluster_resolutions=[0.5, 1.0])
    jobs = n_jobs or max(1, min(2, os.cpu_count() or 1))
    return load_config({
        "name": "topiceval demo",
        "description": "scE2TM and baselines on the shipped Pollen et al. 2014 dataset (299 cells, 5000 genes, "
                       "11 cell types), scored with every metric. Made by `topiceval demo`.",
        "notes": (
            f"K = {topics} topics (paper: 100) and one seed, so that the demo runs in minutes on 2 CPU cores. "
            "Epochs (solver iterations for NMF / LDA): "
            + ", ".join(f"{n} {s['epochs']}" for n, s in settings.items())
            + " (the paper trains scE2TM for 500). scE2TM has no external (scGPT) embedding here: a 50-component PCA of "
            "the input stands in (two views of the same data, not the paper's setting). TC, ORA and GSEA use "
            "the shipped Reactome collection (a subset of MSigDB C2; the paper uses all MSigDB for TC and C2 "
            "for ORA / GSEA); Hallmark TC is shown beside it."
        ),
        "seeds": [0],
        "datasets": ["pollen_hvg5000"],
        "preprocess": {"n_top_genes": 5000},
        "train": {"models": names},
        "models": settings,
        "collections": [
            {"name": "reactome", "human": "reactome", "metrics": ["tc", "td", "tq", "ip", "ora", "gsea", "clustering"]},
            {"name": "hallmark", "human": "hallmark", "metrics": ["tc", "td", "tq"]},
        ],
        "evaluation": evaluation,
        "run": {"backend": "joblib", "n_jobs": jobs},
        "output": {"rank_by": ["TQ", "IP", "ORA_Q", "GSEA_Q", "ARI", "NMI"]},
    })


def run_demo(out: PathLike = "reports/demo", *, models: Sequence[str] | str = DEMO_MODELS, quick: bool = False,
             n_jobs: int | None = None, cache: PathLike | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the demo and write its report into ``out``.

    Returns
    -------
    dict
        ``results`` (:class:`~topiceval.leaderboard.Results`), ``report`` (paths), ``table`` (the
        printed leaderboard), ``wall_s``, ``config``.
    """
    from . import report, runner

    config = demo_config(models, quick=quick, n_jobs=n_jobs)
    target = as_path(out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="topiceval-demo-") as scratch:
        results = runner.run(config, cache=cache if cache is not None else scratch, log=target / runner.LOG_FILE,
                             progress=progress)
        paths = report.write_report(results, target, plots=True)
    return {"results": results, "report": paths, "table": report.leaderboard_text(results),
            "wall_s": time.perf_counter() - started, "config": config}
