"""What one paper-setting leaderboard cell of cNMF or Spectra costs, measured on a short fit.

The paper-setting leaderboard (``reports/paper-setting/paper-setting.toml``) runs cNMF with 100
NMF replicates and Spectra with 10,000 epochs at K = 100 per cell: hours that are planned, not
guessed, from this script. It reads their settings from that file and fits each model twice on
one dataset of the shared data folder, prepared as the leaderboard prepares it
(``runner.prepare_dataset``: the config's highly variable genes of count data, yan as
distributed), with a small and a larger number of units (cNMF replicates, Spectra epochs). It
prints the cost of one unit (the difference of the two wall times over the difference of the
units, so that the fixed costs drop out: preparing the input, loading the prior; cNMF's consensus
grows with the replicates and stays in) and that cost times the full schedule::

    OMP_NUM_THREADS=1 python benchmarks/bench_cell_costs.py darmanis
    python benchmarks/bench_cell_costs.py pollen --models cnmf --units 10 30

One thread (the leaderboard's ``threads_per_cell = 1``) unless ``--threads`` says otherwise. For
Spectra the extrapolation is an upper bound (its learning-rate schedule can stop a fit early); for
cNMF an estimate (its replicates differ only in their seeds; the consensus's pairwise distances
grow with the square of the replicates, a few seconds at 100).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

from pathlib import Path

#: The configuration whose cells are costed: every setting but the number of units comes from it.
CONFIG = Path(__file__).resolve().parents[1] / "reports" / "paper-setting" / "paper-setting.toml"

#: (model, default small and large number of units, the unit's name, where the config sets the
#: units). cNMF needs some 10 replicates here: with fewer its density filter can leave fewer
#: spectra than K for the consensus (darmanis, 4 replicates, threshold 0.01: 46 left).
MODELS = {
    "cnmf": ((10, 20), "a replicate", "replicates"),
    "spectra": ((20, 80), "an epoch", "epochs"),
}


def _settings(model: str) -> tuple[int, int | None, dict, int]:
    """The config's K, epochs, options and full number of units of ``model``."""
    from topiceval.leaderboard.config import load_config

    spec = next(m for m in load_config(CONFIG).models if m.name == model)
    options = {**spec.options, "progress": False}
    full = spec.epochs if MODELS[model][2] == "epochs" else options["replicates"]
    return spec.n_topics, spec.epochs, options, full


def _fit(model: str, adata, units: int, seed: int) -> float:
    import importlib

    n_topics, epochs, options, _ = _settings(model)
    if MODELS[model][2] == "epochs":
        epochs = units
    else:
        options[MODELS[model][2]] = units
    fit = importlib.import_module(f"topiceval.adapters.{model}").fit
    started = time.perf_counter()
    fit(adata, n_topics=n_topics, epochs=epochs, seed=seed, **options)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset of the shared data folder with expression (e.g. darmanis)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--units", nargs=2, type=int, metavar=("SMALL", "LARGE"),
                        help="the two numbers of units to fit (default: cnmf 10 20, spectra 20 80)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.units and not 0 < args.units[0] < args.units[1]:
        parser.error("--units needs 0 < SMALL < LARGE")

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    import tempfile

    import anndata

    from topiceval.errors import InputError
    from topiceval.leaderboard.config import DatasetSpec, load_config
    from topiceval.leaderboard.runner import prepare_dataset

    with tempfile.TemporaryDirectory(prefix="topiceval-bench-") as cache, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n_top_genes = load_config(CONFIG).n_top_genes
        prepared = prepare_dataset(DatasetSpec(args.dataset), n_top_genes, cache)  # the leaderboard's input
        if prepared.skip_reason:
            parser.error(f"{args.dataset}: {prepared.skip_reason}")
        adata = anndata.read_h5ad(prepared.path)
    print(f"{args.dataset}: {adata.n_obs} cells x {adata.n_vars} genes, {args.threads} thread(s), "
          f"the settings of {CONFIG.name}")
    for model in args.models:
        (small, large), per, _ = MODELS[model]
        unit, full = per.split()[1], _settings(model)[3]
        if args.units:
            small, large = args.units
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times = {units: _fit(model, adata, units, args.seed) for units in (small, large)}
        except InputError as exc:  # the cell cannot run (e.g. K above the number of cells)
            print(f"{model}: cannot run on {args.dataset}: {exc}")
            continue
        per_unit = (times[large] - times[small]) / (large - small)
        fixed = times[small] - small * per_unit
        print(f"{model}: {small} {unit}s {times[small]:.1f} s, {large} {unit}s {times[large]:.1f} s -> "
              f"{per_unit:.2f} s {per} (+ {fixed:.1f} s fixed); "
              f"{full} {unit}s: {(fixed + full * per_unit) / 3600:.2f} h a cell")


if __name__ == "__main__":
    main()
