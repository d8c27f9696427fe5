"""What keeping freed memory in the C heap saves a training on the CPU (``retain_freed_memory``).

A training step frees and reallocates the same large tensors every step; by default glibc gives
the freed top of its heap back to the system and the next step faults every page of it in again.
:func:`topiceval.adapters._common.retain_freed_memory` (called by the leaderboard for each cell it
trains, and by ``topiceval train``) keeps it. This script fits one model of the paper-setting
leaderboard (``reports/paper-setting/paper-setting.toml``: its settings, one thread) on one dataset
of the shared data folder, prepared as the leaderboard prepares it, in two fresh processes: glibc's
default heap, then the retained one. Each process fits twice (SMALL and LARGE epochs) so that the
fixed costs drop out of the cost of an epoch; it prints, per heap, the seconds an epoch, the kernel
(system) CPU seconds and the minor page faults of the two fits, then the ratio::

    python benchmarks/bench_heap.py pollen                       # d-scIGM, 2 and 6 epochs
    python benchmarks/bench_heap.py kang_pbmc --model spectra --epochs 20 80

The numbers of the two heaps are the same (the heap changes where memory lives, not what is
computed); the script checks that the two fits' topic-gene matrices are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import _paper_setting

MODELS = ("dscigm", "spectra")


def _child(mode: str, dataset: str, model: str, epochs: tuple[int, int], seed: int) -> dict:
    """Two fits in this process under ``mode`` (``default`` or ``retain``): times and faults."""
    import hashlib
    import importlib

    import numpy as np
    import torch
    from topiceval.adapters import _common

    torch.set_num_threads(1)
    applied = _common.retain_freed_memory() if mode == "retain" else False
    config = _paper_setting.load_config()
    spec = next(s for s in config.models if s.name == model)
    adata = _paper_setting.prepared_dataset(dataset, config)  # the leaderboard's input
    fit = importlib.import_module(f"topiceval.adapters.{model}").fit
    out = {"mode": mode, "applied": applied, "shape": list(adata.shape), "fits": []}
    for n in epochs:
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(adata, n_topics=spec.n_topics, epochs=n, seed=seed, **{**spec.options, "progress": False})
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        topic_gene = np.ascontiguousarray(result.topic_gene)
        out["fits"].append({"epochs": n, "wall_s": wall, "sys_s": after.ru_stime - before.ru_stime,
                            "user_s": after.ru_utime - before.ru_utime, "faults": after.ru_minflt - before.ru_minflt,
                            "topic_gene_sha256": hashlib.sha256(topic_gene.tobytes()).hexdigest()})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset of the shared data folder with expression (e.g. pollen)")
    parser.add_argument("--model", choices=MODELS, default="dscigm")
    parser.add_argument("--epochs", nargs=2, type=int, default=(2, 6), metavar=("SMALL", "LARGE"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("default", "retain"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    small, large = args.epochs
    if not 0 < small < large:
        parser.error("--epochs needs 0 < SMALL < LARGE")
    if args.child:
        print(json.dumps(_child(args.child, args.dataset, args.model, (small, large), args.seed)))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    runs = {}
    for mode in ("default", "retain"):
        command = [sys.executable, __file__, args.dataset, "--model", args.model, "--epochs", str(small), str(large),
                   "--seed", str(args.seed), "--child", mode]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{mode} heap: the fit failed:\n{done.stderr[-4000:]}")
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    n_obs, n_vars = runs["default"]["shape"]
    print(f"{args.model} on {args.dataset} ({n_obs} cells x {n_vars} genes), one thread, the settings of {_paper_setting.CONFIG.name}; "
          f"{small} and {large} epochs")
    per_epoch = {}
    for mode, run in runs.items():
        a, b = run["fits"]
        per_epoch[mode] = (b["wall_s"] - a["wall_s"]) / (large - small)
        label = "glibc default" if mode == "default" else f"retained{'' if run['applied'] else ' (NOT applied)'}"
        print(f"  {label:>14}: {per_epoch[mode]:.2f} s an epoch; both fits: {a['sys_s'] + b['sys_s']:.1f} s in the kernel, "
              f"{a['user_s'] + b['user_s']:.1f} s user, {a['faults'] + b['faults']:,} minor page faults")
    same = all(x["topic_gene_sha256"] == y["topic_gene_sha256"]
               for x, y in zip(runs["default"]["fits"], runs["retain"]["fits"], strict=True))
    print(f"  ratio: {per_epoch['default'] / per_epoch['retain']:.2f}x faster an epoch retained; "
          f"topic-gene matrices {'identical' if same else 'DIFFER'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
