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
from typing import Any

import _paper_setting

#: model -> (default small and large number of units, the unit, where the config sets the units).
#: cNMF needs some 10 replicates here: with fewer its density filter can leave fewer spectra than
#: K for the consensus (darmanis, 4 replicates, threshold 0.01: 46 left).
MODELS = {
    "cnmf": ((10, 20), "replicate", "replicates"),
    "spectra": ((20, 80), "epoch", "epochs"),
}


def _full_units(spec: Any) -> int:
    """The number of units of the config's schedule for the model of ``spec``."""
    return spec.epochs if MODELS[spec.name][2] == "epochs" else spec.options["replicates"]


def _fit(spec: Any, adata: Any, units: int, seed: int) -> float:
    """Seconds of one fit of ``spec`` (a config's model) with ``units`` replicates or epochs."""
    import importlib

    options, epochs = {**spec.options, "progress": False}, spec.epochs
    if MODELS[spec.name][2] == "epochs":
        epochs = units
    else:
        options[MODELS[spec.name][2]] = units
    fit = importlib.import_module(f"topiceval.adapters.{spec.name}").fit
    started = time.perf_counter()
    fit(adata, n_topics=spec.n_topics, epochs=epochs, seed=seed, **options)
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
    from topiceval.errors import InputError

    config = _paper_setting.load_config()
    adata = _paper_setting.prepared_dataset(args.dataset, config)  # the leaderboard's input
    print(f"{args.dataset}: {adata.n_obs} cells x {adata.n_vars} genes, {args.threads} thread(s), "
          f"the settings of {_paper_setting.CONFIG.name}")
    specs = {spec.name: spec for spec in config.models}
    for model in args.models:
        spec = specs[model]
        (small, large), unit, _ = MODELS[model]
        if args.units:
            small, large = args.units
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times = {units: _fit(spec, adata, units, args.seed) for units in (small, large)}
        except InputError as exc:  # the cell cannot run (e.g. K above the number of cells)
            print(f"{model}: cannot run on {args.dataset}: {exc}")
            continue
        per_unit = (times[large] - times[small]) / (large - small)
        fixed, full = times[small] - small * per_unit, _full_units(spec)
        print(f"{model}: {small} {unit}s {times[small]:.1f} s, {large} {unit}s {times[large]:.1f} s -> "
              f"{per_unit:.2f} s per {unit} (+ {fixed:.1f} s fixed); "
              f"{full} {unit}s: {(fixed + full * per_unit) / 3600:.2f} h a cell")


if __name__ == "__main__":
    main()
