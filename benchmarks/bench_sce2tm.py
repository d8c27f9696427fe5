"""scE2TM: topiceval's implementation vs the authors' PyPI package ``sce2tm`` 1.2.3, side by side.

Measures, on the same data and hyperparameters in one run: setup time (neighbour search), time per
training epoch, total training time and peak resident memory (whole process, and during training
only, sampled every 20 ms), each side in its own subprocess with the same torch thread count.
With ``--check`` it first verifies that both compute the same thing: the reference model's
weights are copied into ours, one step with the same batch and the same random noise must give
the same loss terms and gradients, and a few RMSprop steps the same weights.

The reference runs in its own virtual environment (``--ref-venv``, created with ``--setup-ref``:
``pip install torch==2.13.0``, ``pip install --no-deps sce2tm==1.2.3 jgraph==0.2.1`` and its
runtime imports scanpy, umap-learn, pynndescent, gseapy, faiss-cpu, pyyaml, ipython). At run time
its installed package is copied to a temporary folder and patched there (nothing of it is kept):

* ``StepLR(..., verbose=True)``: the argument was removed from torch; dropped;
* the cluster head is fixed to 512-d (scGPT) inputs: it takes the embedding's width instead;
* ``n_jobs=4`` in the neighbour search: the benchmark's thread count;
* the hard-coded gene-set path and the in-training evaluation every 100 epochs (which would time
  TC, Louvain sweeps and CSV writing, and whose results are wrong unless the epoch count is a
  multiple of 100): evaluation is switched off; only training is timed;
* an epoch timestamp is recorded after each epoch's log line.

Data: real cells, resampled to the requested size. ``darmanis`` and ``pollen`` (765 cells, the
genes they share) are drawn with replacement and each drawn cell's counts are binomially thinned
(p = 0.5, so no two cells are identical), then library-size normalised, log1p-transformed and
restricted to the top-variance genes (the paper's input: log1p + 5000 highly variable genes). The
external view is a 50-component PCA of that matrix for both sides (no scGPT embeddings exist for
these cells; the reference's head is patched to 50-d inputs).

Usage::

    python benchmarks/bench_sce2tm.py --setup-ref                  # once: build the reference venv
    python benchmarks/bench_sce2tm.py --epochs 500 --check --out bench_sce2tm.json   # 1 thread each
    python benchmarks/bench_sce2tm.py --epochs 20 --threads 2                      # 2 threads each
    python benchmarks/bench_sce2tm.py --epochs 20 --ref-threads 2                  # each side's default
    python benchmarks/bench_sce2tm.py --epochs 20                  # a quick look

Measured on the shared 2-core development machine (torch 2.13.0 CPU, other jobs running; the
lead re-measures on a quiet machine), 5000 genes, K = 100:

* 3000 cells, 500 epochs, 1 thread each: topiceval 749 s (0.93 s CPU per epoch, wall inflated by
  contention during its run), reference 934 s (1.85 s CPU per epoch); CPU per epoch 2.0x; peak
  memory 648 MB vs 1244 MB; setup (neighbours) 3.5 s vs 36 s.
* 3000 cells, 20 epochs, 1 thread each, quieter machine: 0.83 s vs 1.92 s median per epoch (2.3x).
* 3000 cells, 20 epochs, each side's default threads (topiceval 1, the reference torch's 2):
  0.83 s vs 12.2 s per epoch (14.6x).
* 457 cells (the size of the authors' Wang example), 30 epochs, 1 thread each: 0.11 s vs 0.31 s
  median per epoch (2.8x; 2.6x CPU).
* Equivalence check: loss terms agree to 2e-7 (relative), gradients to 1.3e-5, BatchNorm running
  statistics exactly; after 3 RMSprop steps 99.99 % of weights agree to 1e-5.

The script prints a table and the ratios reference / topiceval: wall-clock and process CPU time
per epoch (CPU time is less disturbed by other processes on a shared machine), setup time and peak
resident memory. The numbers depend on the machine and on contention; rerun both sides on a quiet
machine before quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
DEFAULT_REF_VENV = Path(tempfile.gettempdir()) / "topiceval-bench-sce2tm-ref"
REF_PACKAGES = ["scanpy", "umap-learn", "pynndescent", "gseapy", "faiss-cpu", "pyyaml", "ipython", "tqdm"]


# --------------------------------------------------------------------------- memory sampling
class PeakRSS:
    """Samples this process's resident set size every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.phase_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.rss()
            self.peak = max(self.peak, value)
            self.phase_peak = max(self.phase_peak, value)
            time.sleep(self.interval)

    def start(self) -> PeakRSS:
        self._thread.start()
        return self

    def reset_phase(self) -> None:
        self.phase_peak = self.rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def maxrss() -> int:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------- data
def shared_data() -> Path:
    env = os.environ.get("TOPICEVAL_SHARED_DATA")
    return Path(env) if env else HERE.parents[1].parent / "shared" / "data"


def build_dataset(workdir: Path, n_cells: int, n_genes: int, seed: int) -> dict:
    """Write ``data.h5ad`` (ours) and ``Bench_HIGHPRE.csv`` / ``Bench.csv`` (reference) to ``workdir``."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    parts = [ad.read_h5ad(shared_data() / "datasets" / name / f"{name}.h5ad") for name in ("darmanis", "pollen")]
    genes = parts[0].var_names.intersection(parts[1].var_names)
    counts = sp.vstack([sp.csr_matrix(p[:, genes].X) for p in parts]).tocsr()
    labels = np.concatenate([p.obs["cell_type"].astype(str).to_numpy() for p in parts])
    pick = rng.integers(0, counts.shape[0], size=n_cells)
    drawn = counts[pick].tocsr()
    drawn.data = rng.binomial(drawn.data.astype(np.int64), 0.5).astype(np.float32)
    drawn.eliminate_zeros()
    library = np.asarray(drawn.sum(1)).ravel()
    normalised = sp.diags((1e4 / np.maximum(library, 1)).astype(np.float32)) @ drawn
    normalised.data = np.log1p(normalised.data)
    mean = np.asarray(normalised.mean(0)).ravel()
    var = np.asarray(normalised.multiply(normalised).mean(0)).ravel() - mean**2
    top = np.sort(np.argsort(-var, kind="stable")[:n_genes])
    X = sp.csr_matrix(normalised[:, top], dtype=np.float32)
    external = PCA(n_components=50, svd_solver="arpack", random_state=seed).fit_transform(X).astype(np.float32)
    cells = [f"cell{i}" for i in range(n_cells)]
    adata = ad.AnnData(X=X, obs=pd.DataFrame({"cell_type": labels[pick]}, index=cells),
                       var=pd.DataFrame(index=np.asarray(genes)[top]))
    adata.obsm["X_ext"] = external
    adata.write_h5ad(workdir / "data.h5ad")
    pd.DataFrame(X.toarray(), index=cells, columns=adata.var_names).to_csv(workdir / "Bench_HIGHPRE.csv")
    pd.DataFrame(external, index=cells).to_csv(workdir / "Bench.csv")
    pd.DataFrame({"cell_type": labels[pick]}, index=cells).to_csv(workdir / "Bench_cell_anno.csv")
    return {"n_cells": n_cells, "n_genes": int(X.shape[1]), "density": X.nnz / (X.shape[0] * X.shape[1]),
            "sources": "darmanis+pollen resampled, thinned p=0.5", "external": "PCA-50"}


# --------------------------------------------------------------------------- reference side
PATCHES = [
    ("runners/Runner.py", "StepLR(optimizer, step_size=self.args.lr_step_size, gamma=0.5, verbose=True)",
     "StepLR(optimizer, step_size=self.args.lr_step_size, gamma=0.5)", 1),
    ("models/scE2TM.py", "            input_dim=512,", "            input_dim=args.foundation_dim,", 1),
    ("utils/data/SingleCellDataHandler.py", "n_jobs=4,", "n_jobs=__N_JOBS__,", 2),
    ("runners/Runner.py", "gene_set_path = './data/msigdb.v2024.1.Hs.symbols.gmt'",
     "gene_set_path = self.args.gene_set_path", 1),
    ("runners/Runner.py", "            if epoch % 100 == 0:\n",
     "            if epoch % 100 == 0 and getattr(self.args, 'evaluate', False):\n", 1),
    ("runners/Runner.py", "            print(output_log)\n",
     "            print(output_log)\n            getattr(self, 'epoch_marks', []).append((time.perf_counter(), time.process_time()))\n", 1),
]


def patched_reference(threads: int) -> Path:
    """Copy the installed ``scE2TM`` package to a temporary folder, patch it, return the folder."""
    import importlib.util

    spec = importlib.util.find_spec("scE2TM")
    if spec is None or spec.origin is None:
        raise SystemExit("the reference package scE2TM is not installed in this interpreter")
    source = Path(spec.origin).parent
    root = Path(tempfile.mkdtemp(prefix="sce2tm-ref-"))
    target = root / "scE2TM"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new, count in PATCHES:
        path = target / rel
        text = path.read_text()
        found = text.count(old)
        if found != count:
            raise SystemExit(f"patch for {rel} expected {count} occurrence(s) of {old!r}, found {found}")
        path.write_text(text.replace(old, new.replace("__N_JOBS__", str(threads))))
    return root


def reference_args(n_topics: int, epochs: int, foundation_dim: int, n_genes: int, gene_embeddings):  # noqa: ANN001, ANN201
    import torch

    return argparse.Namespace(
        model="scE2TM", dataset_name="Bench", num_topics=n_topics, num_neighbors=15, num_top_genes=10,
        tac_weight=1.0, gpu_id=-1, device=torch.device("cpu"), learning_rate=0.001, lr_scheduler=True,
        lr_step_size=125, dropout=0.0, en1_units=200, epochs=epochs, batch_size=512, beta_temp=0.2,
        weight_loss_ECR=100.0, foundation_dim=foundation_dim, vocab_size=n_genes,
        gene_embeddings=gene_embeddings, gene_set_path=None, evaluate=False, output_dir=tempfile.gettempdir(),
    )


def run_reference(workdir: Path, epochs: int, n_topics: int, threads: int) -> dict:
    import contextlib
    import io
    import random

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    root = patched_reference(threads)
    sys.path.insert(0, str(root))
    try:
        from scE2TM.runners.Runner import Runner
        from scE2TM.utils.data.SingleCellDataHandler import SingleCellDataHandler

        memory = PeakRSS().start()
        random.seed(1)
        np.random.seed(1)
        torch.manual_seed(1)
        sink = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            handler = SingleCellDataHandler(dataset_name="Bench", batch_size=512, n_neighbors=15,
                                            data_dir=str(workdir), output_dir=str(workdir),
                                            device=torch.device("cpu"), use_labels=False)
        setup = time.perf_counter() - t0
        args = reference_args(n_topics, epochs, handler.foundation_embeddings.shape[1],
                              handler.vocab_size, handler.gene_embeddings)
        setup_peak = memory.peak
        memory.reset_phase()
        with contextlib.redirect_stdout(sink):
            runner = Runner(args)
            runner.epoch_marks = []
            start = (time.perf_counter(), time.process_time())
            runner.train(handler.train_loader, handler.test_loader, handler.gene_vocab, 10, None)
        stamps = np.asarray([start, *runner.epoch_marks])
        marks, cpu_marks = np.diff(stamps[:, 0]), np.diff(stamps[:, 1])
        memory.stop()
        return {"side": "reference sce2tm 1.2.3", "setup_s": setup, "epoch_s": marks.tolist(), "epoch_cpu_s": cpu_marks.tolist(),
                "train_s": float(marks.sum()), "peak_rss": memory.peak, "train_peak_rss": memory.phase_peak,
                "setup_peak_rss": setup_peak, "maxrss": PeakRSS.maxrss(), "threads": torch.get_num_threads()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- our side
def run_ours(workdir: Path, epochs: int, n_topics: int, threads: int) -> dict:
    import anndata as ad
    import numpy as np

    from topiceval.models.sce2tm import SCE2TM

    memory = PeakRSS().start()
    t0 = time.perf_counter()
    adata = ad.read_h5ad(workdir / "data.h5ad")
    load = time.perf_counter() - t0
    model = SCE2TM(n_topics=n_topics, epochs=epochs, seed=1, n_threads=threads, progress=False)
    model.fit(adata, embedding_key="X_ext", key_added=None)
    memory.stop()
    history = model.history
    return {"side": "topiceval", "setup_s": model.info["setup_seconds"], "load_s": load,
            "epoch_s": history["seconds"].tolist(), "epoch_cpu_s": history["cpu_seconds"].tolist(), "train_s": float(np.sum(history["seconds"])),
            "sinkhorn_iter": history["sinkhorn_iter"].tolist(),
            "peak_rss": memory.peak, "maxrss": PeakRSS.maxrss(), "threads": model.info["n_threads"],
            "final_loss": {k: float(history[k].iloc[-1]) for k in ("loss", "recon", "kl", "ecr")}}


# --------------------------------------------------------------------------- equivalence check
NAME_MAP = {
    "encoder.0.": "encoder.fc1.", "encoder.1.": "encoder.bn1.", "encoder.3.": "encoder.fc2.",
    "encoder_mu.": "encoder.fc_mu.", "encoder_logvar.": "encoder.fc_logvar.", "mean_bn.": "encoder.bn_mu.",
    "logvar_bn.": "encoder.bn_logvar.", "decoder_bn.": "decoder.bn.",
    "cross_modal_cluster_head.cluster_head.0.": "cluster_head.fc1.",
    "cross_modal_cluster_head.cluster_head.1.": "cluster_head.bn.",
    "cross_modal_cluster_head.cluster_head.3.": "cluster_head.fc2.",
}
EXACT_MAP = {"gene_embeddings": "decoder.gene_embeddings", "topic_embeddings": "decoder.topic_embeddings",
             "prior_mu": "prior.prior_mu", "prior_var": "prior.prior_var"}


# Biases whose shift a following BatchNorm removes (directly, or through the Linear after it), so
# their true gradient is exactly 0 and both sides hold float noise there; RMSprop turns that noise
# into lr-sized steps, so they (and the running means downstream) drift apart after the first step.
BN_CANCELLED = {"encoder.0.bias", "encoder.3.bias", "encoder_mu.bias", "encoder_logvar.bias",
                "cross_modal_cluster_head.cluster_head.0.bias"}


def map_name(name: str) -> str | None:
    if name in EXACT_MAP:
        return EXACT_MAP[name]
    for old, new in NAME_MAP.items():
        if name.startswith(old):
            return new + name[len(old):]
    return None  # encoder_fc1 / encoder_fc2: defined but unused by the reference


def check_batch(workdir: Path, n: int = 256):  # noqa: ANN201
    import numpy as np
    import pandas as pd

    X = pd.read_csv(workdir / "Bench_HIGHPRE.csv", index_col=0).to_numpy(np.float32)
    E = pd.read_csv(workdir / "Bench.csv", index_col=0).to_numpy(np.float32)
    rng = np.random.default_rng(7)
    batches = []
    for _ in range(3):
        a, nx, nv = (rng.choice(X.shape[0], n, replace=False) for _ in range(3))
        batches.append((X[a], E[a], X[nx], E[nv]))
    return batches


def check_reference(workdir: Path, n_topics: int, out: Path) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    root = patched_reference(1)
    sys.path.insert(0, str(root))
    from scE2TM.models.scE2TM import scE2TM as RefModel

    batches = check_batch(workdir)
    torch.manual_seed(0)
    n_genes, dim = batches[0][0].shape[1], batches[0][1].shape[1]
    genes = torch.nn.init.trunc_normal_(torch.zeros(n_genes, 200), std=0.02).numpy()
    model = RefModel(reference_args(n_topics, 1, dim, n_genes, genes))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    steps = []
    for step, (x, v, xn, vn) in enumerate(batches):
        model.train()
        torch.manual_seed(100 + step)
        result = model(*(torch.from_numpy(a) for a in (x, v, xn, vn)), epoch=1)
        optimizer.zero_grad()
        result["loss"].backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        buffers = {k: b.clone() for k, b in model.named_buffers()}
        optimizer.step()
        steps.append({"terms": {k: float(t) for k, t in result.items()}, "grads": grads, "buffers": buffers})
    torch.save({"initial": initial, "steps": steps, "final": model.state_dict()}, out)
    shutil.rmtree(root, ignore_errors=True)
    del np


def check_ours(workdir: Path, n_topics: int, ref_file: Path) -> dict:
    import torch

    from topiceval.models.sce2tm.model import SCE2TMConfig, SCE2TMNet

    torch.set_num_threads(1)
    ref = torch.load(ref_file, weights_only=True)
    batches = check_batch(workdir)
    n_genes, dim = batches[0][0].shape[1], batches[0][1].shape[1]
    net = SCE2TMNet(n_genes, dim, SCE2TMConfig(n_topics=n_topics))
    state = {map_name(k): v for k, v in ref["initial"].items() if map_name(k) is not None}
    net.load_state_dict(state)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-3)
    worst_term, worst_grad, total_diff, total_norm, worst_stats = 0.0, 0.0, 0.0, 0.0, 0.0
    counts_equal = True
    cancelled: set[str] = set()
    for step, (x, v, xn, vn) in enumerate(batches):
        net.train()
        torch.manual_seed(100 + step)
        terms, _ = net.losses(*(torch.from_numpy(a) for a in (x, v, xn, vn)))
        optimizer.zero_grad()
        terms["loss"].backward()
        # BatchNorm running statistics after the step's forward passes (the reference updates the
        # encoder's three times per step); compared before the weights can drift apart
        buffers = dict(net.named_buffers())
        for key, value in (ref["steps"][step]["buffers"].items() if step == 0 else ()):
            if map_name(key) in buffers and value.is_floating_point():
                ours = buffers[map_name(key)].double()
                worst_stats = max(worst_stats, float((ours - value.double()).abs().max() / value.double().abs().max().clamp_min(1e-12)))
            elif map_name(key) in buffers:
                counts_equal = counts_equal and bool(torch.equal(buffers[map_name(key)], value))
        optimizer.step()
        mine = {"loss": terms["loss"], "topic_model_loss": terms["recon"] + terms["kl"], "ecr_loss": terms["ecr"],
                "cross_modal_loss": terms["contrast"] + terms["consistency"] - 5 * terms["entropy"]}
        for key, value in ref["steps"][step]["terms"].items():
            worst_term = max(worst_term, abs(float(mine[key].detach()) - value) / max(abs(value), 1.0))
        params = dict(net.named_parameters())
        ref_grads = ref["steps"][step]["grads"]
        for key, grad in ref_grads.items():
            g = params[map_name(key)].grad
            total_diff += float((g - grad).norm()) ** 2
            total_norm += float(grad.norm()) ** 2
            if key in BN_CANCELLED:
                cancelled.add(key)
                continue
            worst_grad = max(worst_grad, float((g - grad).norm() / grad.norm()))
    final = net.state_dict()
    # RMSprop's first steps move each entry by about 10 x lr whatever the size of its gradient, so
    # entries whose gradient is at float-noise level can move in opposite directions on the two
    # sides; report the largest difference and the share of entries that agree to 1e-5
    diffs = [(final[map_name(k)].double() - v.double()).abs().ravel()
             for k, v in ref["final"].items()
             if map_name(k) is not None and v.is_floating_point() and k not in BN_CANCELLED
             and not k.endswith(("running_mean", "running_var"))]  # these include the drifting biases
    diffs = torch.cat(diffs)
    worst_weight = float(diffs.max())
    share_close = float((diffs <= 1e-5).double().mean())
    return {"steps": len(batches), "max_rel_loss_diff": worst_term, "max_rel_grad_diff": worst_grad,
            "rel_grad_diff_all": (total_diff / total_norm) ** 0.5,
            "max_abs_weight_diff_after_steps": worst_weight, "share_weights_within_1e-5": share_close, "max_rel_running_stat_diff": worst_stats,
            "bn_batch_counts_equal": counts_equal,
            "bn_cancelled_biases_skipped": sorted(cancelled)}


# --------------------------------------------------------------------------- driver
def setup_reference(venv: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "--no-deps", "sce2tm==1.2.3", "jgraph==0.2.1"], check=True)
    subprocess.run([*pip, "numpy", "pandas", "scipy", "scikit-learn", *REF_PACKAGES], check=True)
    return venv / "bin" / "python"


def child(python: str, mode: str, workdir: Path, args: argparse.Namespace, extra: list[str] | None = None,
          threads: int | None = None) -> dict:
    threads = threads or args.threads
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    cmd = [python, str(HERE), f"--_child={mode}", f"--_workdir={workdir}", f"--epochs={args.epochs}",
           f"--topics={args.topics}", f"--threads={threads}", *(extra or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(result: dict) -> dict:
    import numpy as np

    epochs = np.asarray(result["epoch_s"])
    cpu = np.asarray(result["epoch_cpu_s"])
    return {"setup_s": result["setup_s"], "mean_epoch_s": float(epochs.mean()),
            "median_epoch_s": float(np.median(epochs)), "median_epoch_cpu_s": float(np.median(cpu)),
            "train_s": float(epochs.sum()),
            "peak_rss_mb": result["peak_rss"] / 2**20,
            "train_peak_rss_mb": result.get("train_peak_rss", result["peak_rss"]) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of both sides (default 1, topiceval's default on 2-core machines)")
    parser.add_argument("--ref-threads", type=int, help="threads of the reference only (default: --threads); "
                        "2 is what the reference gets by default on a 2-core machine")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data resampling")
    parser.add_argument("--ref-venv", type=Path, default=DEFAULT_REF_VENV)
    parser.add_argument("--setup-ref", action="store_true", help="create the reference venv and exit")
    parser.add_argument("--skip-ref", action="store_true", help="time topiceval only")
    parser.add_argument("--check", action="store_true", help="verify equivalence with the reference first")
    parser.add_argument("--workdir", type=Path, help="keep the generated data here")
    parser.add_argument("--out", type=Path, help="write all results as JSON")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_ref-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._child:
        runners = {"ours": run_ours, "reference": run_reference}
        if args._child in runners:
            result = runners[args._child](args._workdir, args.epochs, args.topics, args.threads)
        elif args._child == "check-reference":
            check_reference(args._workdir, args.topics, args._ref_file)
            result = {"ok": True}
        else:
            result = check_ours(args._workdir, args.topics, args._ref_file)
        print(json.dumps(result))
        return

    ref_python = args.ref_venv / "bin" / "python"
    if args.setup_ref:
        print(f"reference python: {setup_reference(args.ref_venv)}")
        return
    if not args.skip_ref and not ref_python.exists():
        raise SystemExit(f"no reference venv at {args.ref_venv}: run with --setup-ref first (or --skip-ref)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-sce2tm-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}}
    try:
        report["data"] = build_dataset(workdir, args.cells, args.genes, args.seed)
        print(f"data: {report['data']}", flush=True)
        if args.check and not args.skip_ref:
            ref_file = workdir / "check.pt"
            child(str(ref_python), "check-reference", workdir, args, [f"--_ref-file={ref_file}"])
            report["check"] = child(sys.executable, "check-ours", workdir, args, [f"--_ref-file={ref_file}"])
            print(f"equivalence check: {report['check']}", flush=True)
        report["ours"] = child(sys.executable, "ours", workdir, args)
        rows = {"topiceval": summarise(report["ours"])}
        if not args.skip_ref:
            report["reference"] = child(str(ref_python), "reference", workdir, args, threads=args.ref_threads)
            rows["reference"] = summarise(report["reference"])
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    keys = ["setup_s", "mean_epoch_s", "median_epoch_s", "median_epoch_cpu_s", "train_s", "peak_rss_mb", "train_peak_rss_mb"]
    ref_threads = args.ref_threads or args.threads
    print(f"\n{args.cells} cells x {args.genes} genes, K = {args.topics}, {args.epochs} epochs, "
          f"threads: topiceval {args.threads}, reference {ref_threads}")
    print(f"{'':<20}" + "".join(f"{k:>18}" for k in keys))
    for side, row in rows.items():
        print(f"{side:<20}" + "".join(f"{row[k]:>18.3f}" for k in keys))
    if "reference" in rows:
        ratio = {k: rows["reference"][k] / rows["topiceval"][k] for k in keys}
        report["ratio_reference_over_topiceval"] = ratio
        print(f"{'ratio ref/ours':<20}" + "".join(f"{ratio[k]:>18.2f}" for k in keys))
    report["summary"] = rows
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
