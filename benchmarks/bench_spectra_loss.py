"""What Spectra's loss costs an epoch, as Spectra computes it and in row blocks (``loss="blocked"``).

Spectra's graph terms are genes x genes: on the 5,000 genes of the paper-setting leaderboard an
epoch waits on memory, and two fits side by side slow each other down (they share the memory
bandwidth). ``loss="blocked"`` (:mod:`topiceval.adapters._spectra_graph`) computes the same loss
and gradients one cache-sized block of rows at a time. This script fits Spectra with the settings
of ``reports/paper-setting/paper-setting.toml`` (one thread, the heap the leaderboard keeps) on one
dataset of the shared data folder, prepared as the leaderboard prepares it, with each loss, in
fresh processes: SMALL and LARGE epochs each, so that the fixed costs drop out of an epoch's. With
``--side-by-side N`` N such processes run at once for each loss (the leaderboard runs a cell a
core). It prints the seconds an epoch per loss and their ratio, and how far apart the two losses'
topic-gene matrices are after LARGE epochs; ``--rounding`` also fits Spectra's own loss on two
threads, whose sums are rounded differently, to show how far rounding alone moves the matrices::

    python benchmarks/bench_spectra_loss.py pollen --rounding
    python benchmarks/bench_spectra_loss.py darmanis --epochs 20 100 --side-by-side 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _paper_setting

LOSSES = ("spectra", "blocked")


def _child(loss: str, dataset: str, epochs: tuple[int, int], seed: int, out: str, threads: int) -> None:
    """Two fits with ``loss`` in this process; their times and last topic-gene matrix to ``out``."""
    import numpy as np
    import torch
    from topiceval.adapters import _common, spectra

    torch.set_num_threads(threads)
    _common.retain_freed_memory()
    config = _paper_setting.load_config()
    spec = next(s for s in config.models if s.name == "spectra")
    adata = _paper_setting.prepared_dataset(dataset, config)  # the leaderboard's input
    fits = []
    for n in epochs:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = spectra.fit(adata, n_topics=spec.n_topics, epochs=n, seed=seed,
                                 **{**spec.options, "loss": loss, "progress": False, "threads": threads})
        fits.append({"epochs": n, "wall_s": time.perf_counter() - started})
    np.save(out, np.asarray(result.topic_gene, dtype=np.float64))
    Path(out + ".json").write_text(json.dumps({"shape": list(adata.shape), "fits": fits}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset of the shared data folder with expression (e.g. pollen)")
    parser.add_argument("--epochs", nargs=2, type=int, default=(20, 80), metavar=("SMALL", "LARGE"))
    parser.add_argument("--side-by-side", type=int, default=1, metavar="N",
                        help="fits run at once for each loss (default 1)")
    parser.add_argument("--rounding", action="store_true",
                        help="also fit Spectra's own loss on two threads (LARGE epochs), for the rounding gap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=LOSSES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    small, large = args.epochs
    if not 0 < small < large:
        parser.error("--epochs needs 0 < SMALL < LARGE")
    if args.side_by_side < 1:
        parser.error("--side-by-side needs N >= 1")
    if args.child:
        _child(args.child, args.dataset, (small, large), args.seed, args.out, args.threads)
        return
    import numpy as np

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    per_epoch, matrices, shape, two_threads = {}, {}, None, None
    with tempfile.TemporaryDirectory(prefix="topiceval-bench-") as folder:
        if args.rounding:
            out = str(Path(folder) / "spectra-2-threads.npy")
            done = subprocess.run([sys.executable, __file__, args.dataset, "--epochs", str(small), str(large),
                                   "--seed", str(args.seed), "--child", "spectra", "--out", out, "--threads", "2"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"loss=spectra on two threads: the fit failed:\n{done.stderr[-4000:]}")
            two_threads = np.load(out)
        for loss in LOSSES:
            outs = [str(Path(folder) / f"{loss}-{i}.npy") for i in range(args.side_by_side)]
            children = [subprocess.Popen([sys.executable, __file__, args.dataset, "--epochs", str(small), str(large),
                                          "--seed", str(args.seed), "--child", loss, "--out", out],
                                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                        for out in outs]
            for child in children:
                _, err = child.communicate()
                if child.returncode:
                    raise SystemExit(f"loss={loss}: the fit failed:\n{err[-4000:]}")
            rates = []
            for out in outs:
                record = json.loads(Path(out + ".json").read_text())
                a, b = record["fits"]
                rates.append((b["wall_s"] - a["wall_s"]) / (large - small))
                shape = record["shape"]
            per_epoch[loss] = float(np.median(rates))
            matrices[loss] = np.load(outs[0])
    n_obs, n_vars = shape
    print(f"Spectra on {args.dataset} ({n_obs} cells x {n_vars} genes), one thread a fit, the settings of "
          f"{_paper_setting.CONFIG.name}; {small} and {large} epochs, {args.side_by_side} fit(s) at once")
    for loss in LOSSES:
        print(f"  loss={loss:>7}: {per_epoch[loss]:.3f} s an epoch")
    gap = float(np.max(np.abs(matrices["spectra"] - matrices["blocked"])))
    print(f"  ratio: {per_epoch['spectra'] / per_epoch['blocked']:.2f}x faster an epoch blocked; topic-gene "
          f"matrices after {large} epochs at most {gap:.2e} apart (largest entry {np.abs(matrices['spectra']).max():.2e})")
    if two_threads is not None:
        print(f"  rounding alone: Spectra's own loss on two threads ends {np.max(np.abs(two_threads - matrices['spectra'])):.2e} "
              "from it on one")


if __name__ == "__main__":
    main()
