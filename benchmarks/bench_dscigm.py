"""d-scIGM: topiceval's implementation against the authors' research code, side by side.

The authors publish no package: ``--ref-dir`` is a checkout of their repository
(https://github.com/nbnbhwyy/d-scIGM; its ``model/`` folder is imported from there, nothing of it
is copied into topiceval). Their code only builds the pathway-masked encoder from their
hierarchy files; the dense variant the scE2TM paper evaluates is their own ``CustomizedLinear``
with an all-ones mask at their widths (9275, 1387, 1066, 447, 147, 26), which is what runs here.
Their ``GBN_model`` is built with a throw-away one-unit hierarchy (only the gene names are read
from the data file), then its encoder is replaced by the dense one before their ``GBN_trainer``
builds its optimisers.

``--check`` (float64, Yan, the authors' setting: 6 x 100 topics, embeddings 200, 50 samples):

1. our network's initial weights are copied into theirs;
2. both get the same minibatch of 32 real cells and the same ``U(0, 1)`` noise (their
   ``torch.FloatTensor(...).uniform_`` in ``model.py`` is fed the noise through a stand-in for
   the module's ``torch`` name; everything else passes through to torch);
3. the loss terms (Poisson NLL, the six KL terms) and the gradient of every parameter must agree
   at rtol 1e-4;
4. their ``GBN_trainer.train`` runs one epoch of two minibatches (encoder step, decoder step,
   each after its own forward pass) and our :class:`~topiceval.models.dscigm.TrainingStep` does
   the same two steps: every parameter must agree at rtol 1e-4 after the first step and after the
   second (the second also checks the gradient their bookkeeping carries from one minibatch to
   the next). Their ``train`` casts batches with ``torch.float``; the stand-in maps it to
   float64. Their checkpoint writing (``torch.save`` of the whole model) and ``test`` (which
   re-loads that checkpoint and writes CSV files) are switched off.

``--check --masked`` repeats the check on the masked encoder: their own ``GBN_model`` built
from ``REF_DIR/datasets`` (their two hierarchy pickles, and their STRING links file when it is
there and not empty, else an empty one; topiceval then reads the hierarchy with
``prior_string=false``), against topiceval's encoder built by
:func:`~topiceval.models.dscigm.read_hierarchical_prior` from the same files: first the masks of
the six layers must be equal, then the loss terms, gradients (ours only on the kept
connections, compared as the dense matrix zero elsewhere) and the two training steps as above.
Their constructor builds the masks in Python loops (several minutes on one core).

Speed and memory: each side trains ``--epochs`` epochs on all of Yan (90 cells x 4656 genes,
batch 32, the last partial batch dropped: 2 minibatches an epoch) in float32, in its own
subprocess with ``--threads`` torch threads; the authors' side through their ``dataloader``
(``num_workers=0``: no loader processes) and ``GBN_trainer.train``, epoch times taken from the
timestamps of their per-epoch log line; ours through :meth:`DSCIGM.fit`. Sides alternate for
``--rounds`` rounds; the report gives the median epoch time of each side and their ratio, CPU
seconds an epoch (steadier than wall time on a shared machine), and peak
resident memory while training (sampled every 20 ms), whole process and above the process just
before the model was built (the authors' constructor first allocates a masked encoder it discards).

Measured on the shared 2-core development machine (torch 2.13.0 CPU, many other jobs running):

* ``--check``: PASS; loss terms within 4.1e-7 relative (their KL constant ``eulergamma + 1`` is
  rounded to float32: a constant shift), the 43 gradients within 1.7e-15 of each tensor's largest
  entry (6.6e-9 elementwise), the parameters after one and after two training steps within 1.9e-10
  (2.1e-7 elementwise);
* ``--epochs 2 --rounds 1``: CPU seconds an epoch ours 2.51, authors 31.89 (ratio 0.079: they call
  ``backward`` once per loss term, seven times per pass, each through the 4656 x 9275 layer), wall
  8.99 s against 139.2 s; peak resident memory in training 1559 MiB against 2316 MiB (above the
  process before the model: 1231 against 1943 MiB; their dense layers also hold all-ones masks).

Usage::

    python benchmarks/bench_dscigm.py --ref-dir /path/to/d-scIGM --check
    python benchmarks/bench_dscigm.py --ref-dir /path/to/d-scIGM --check --masked --no-speed
    python benchmarks/bench_dscigm.py --ref-dir /path/to/d-scIGM --epochs 5 --rounds 2 --out bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "datasets" / "yan"
DATA_FILE, LABEL_FILE = "yan_HIGHPRE.csv", "yan_cell_anno.csv"
HIDDEN = (9275, 1387, 1066, 447, 147, 26)
TOPICS = (100,) * 6
RTOL = 1e-4
REF_MODULES = ("utils", "customized_linear", "model", "learning_utils", "mydataset", "trainer")


# ----------------------------------------------------------------------------- the authors' side
class _TorchStandIn(types.ModuleType):
    """``torch`` for one of the authors' modules: passes everything through except the names set.

    ``noise`` (a list, consumed from the front) feeds ``torch.FloatTensor(*shape).uniform_(0, 1)``;
    ``float`` replaces ``torch.float``; ``save`` replaces ``torch.save``.
    """

    def __init__(self, torch: Any, *, noise: list | None = None, float_dtype: Any = None,
                 save: Any = None) -> None:
        super().__init__("torch")
        self._torch, self._noise = torch, noise
        if float_dtype is not None:
            self.float = float_dtype
        if save is not None:
            self.save = save

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def FloatTensor(self, *shape: int) -> Any:  # noqa: N802 - the name the authors call
        if self._noise is None:
            return self._torch.FloatTensor(*shape)
        stand_in = self

        class _Pending:
            def uniform_(self, low: float, high: float) -> Any:
                if (low, high) != (0, 1):
                    raise AssertionError(f"unexpected uniform_({low}, {high})")
                u = stand_in._noise.pop(0)
                if tuple(u.shape) != tuple(shape):
                    raise AssertionError(f"noise of shape {tuple(u.shape)} where the reference asks {shape}")
                return u

        return _Pending()


def import_reference(ref_dir: Path) -> dict[str, types.ModuleType]:
    """Import the authors' ``model/`` modules (by their own flat names) from ``ref_dir``."""
    folder = Path(ref_dir) / "model"
    if not (folder / "model.py").is_file():
        raise SystemExit(f"{folder}/model.py not found: --ref-dir must be a checkout of nbnbhwyy/d-scIGM")
    for name in REF_MODULES:
        if name in sys.modules and not str(getattr(sys.modules[name], "__file__", "")).startswith(str(folder)):
            raise SystemExit(f"a module named {name!r} is already imported from elsewhere")
    sys.path.insert(0, str(folder))
    import matplotlib

    matplotlib.use("Agg")
    return {name: importlib.import_module(name) for name in REF_MODULES}


def reference_data_dir(work: Path, data_dir: Path, prior_dir: Path | None = None) -> Path:
    """A folder the authors' ``GBN_model`` can be built from: the real data file and a hierarchy.

    Their constructor reads the data file (for the gene names), the two hierarchy pickles and the
    STRING links file to build the masked encoder. Without ``prior_dir`` the hierarchy is a
    throw-away one-unit one (the dense check replaces their encoder right after); with it, their
    own two pickles and, when ``prior_dir`` holds a non-empty one, their STRING file (else an
    empty one: no STRING links, as topiceval's ``prior_string=false``).
    """
    folder = work / "ref_data"
    folder.mkdir(parents=True, exist_ok=True)
    for name in (DATA_FILE, LABEL_FILE):
        target = folder / name
        if not target.exists():
            target.symlink_to(Path(data_dir).resolve() / name)
    if prior_dir is not None:
        from topiceval.models.dscigm.prior import HIERARCHY_EDGES_FILE, HIERARCHY_LEVELS_FILE, STRING_LINKS_FILE

        for name in (HIERARCHY_LEVELS_FILE, HIERARCHY_EDGES_FILE):
            (folder / name).symlink_to(Path(prior_dir).resolve() / name)
        links = Path(prior_dir) / STRING_LINKS_FILE
        if links.is_file() and links.stat().st_size > 0:
            (folder / STRING_LINKS_FILE).symlink_to(links.resolve())
        else:
            (folder / STRING_LINKS_FILE).write_text("")
        return folder
    layers = {level: [f"unit{level}"] for level in range(1, 7)}
    edges: dict[int, dict] = {level: {} for level in range(1, 6)}
    (folder / "hierarchical_prior_knowledge_layer.pkl").write_bytes(pickle.dumps(layers))
    (folder / "hierarchical_prior_knowledge_edge.pkl").write_bytes(pickle.dumps(edges))
    (folder / "9606.protein.links.v11.5_700.txt").write_text("")
    return folder


def reference_args(data_folder: Path, work: Path, n_genes: int, epochs: int) -> argparse.Namespace:
    """The namespace the authors' ``main.py`` builds (their defaults), on the CPU."""
    return argparse.Namespace(
        batch_size=32, no_cuda=True, seed=0, epochs=epochs, rate=0.0, topic_size=list(TOPICS),
        hidden_size=list(HIDDEN), vocab_size=n_genes, embed_size=200, lr=1e-2, weight_decay=0.0,
        dataset_dir=str(data_folder) + "/", output_dir=str(work) + "/", save_path=str(work) + "/",
        dataname=DATA_FILE, labelname=LABEL_FILE, cuda=False, device="cpu",
    )


def dense_reference_trainer(ref: dict[str, types.ModuleType], args: argparse.Namespace,
                            masked: bool = False) -> Any:
    """The authors' ``GBN_trainer`` whose model has the dense encoder (all-ones ``CustomizedLinear``).

    ``masked``: their own masked encoder, as their constructor builds it from ``args.dataset_dir``.
    """
    import torch

    model_mod, trainer_mod = ref["model"], ref["trainer"]
    build = model_mod.GBN_model
    sizes = [args.vocab_size, *args.hidden_size]

    def dense_model(a: argparse.Namespace) -> Any:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # their prints
            net = build(a)
        if masked:
            return net
        net.h_encoder = torch.nn.ModuleList(
            [ref["customized_linear"].CustomizedLinear(torch.ones(sizes[t], sizes[t + 1])) for t in range(len(sizes) - 1)])
        return net

    trainer_mod.GBN_model = dense_model
    try:
        trainer = trainer_mod.GBN_trainer(args, voc_path=None)
    finally:
        trainer_mod.GBN_model = build
    trainer.test = lambda *a, **k: (0.0, 0.0)  # re-loads a pickled checkpoint and writes CSVs
    return trainer


class _MaskedWeight:
    """Our masked layer's weight seen as the authors' dense one (zero off the mask).

    ``detach``, ``copy_`` and ``grad`` act on the dense ``(out, in)`` matrix; the layer itself
    stores only the kept connections (``values``).
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer

    def detach(self) -> Any:
        return self.layer.weight.detach()

    def copy_(self, dense: Any) -> None:
        self.layer.values.copy_(dense[self.layer.rows, self.layer.cols])

    @property
    def grad(self) -> Any:
        g = self.layer.values.grad
        if g is None:
            return None
        return g.new_zeros(self.layer.out_features, self.layer.in_features).index_put(
            (self.layer.rows, self.layer.cols), g)

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            raise ValueError("only clearing is supported")
        self.layer.values.grad = None


def parameter_pairs(ours: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    """``(name, our parameter, their parameter)`` for every trained tensor."""
    from topiceval.models.dscigm import MaskedLinear

    pairs = []
    for t in range(len(TOPICS)):
        for kind in ("weight", "bias"):
            mine = getattr(ours.encoder[t], kind)
            if kind == "weight" and isinstance(ours.encoder[t], MaskedLinear):
                mine = _MaskedWeight(ours.encoder[t])
            pairs.append((f"encoder.{t}.{kind}", mine, getattr(theirs.h_encoder[t], kind)))
            pairs.append((f"shape_heads.{t}.{kind}", getattr(ours.shape_heads[t], kind),
                          getattr(theirs.shape_encoder[t], kind)))
            pairs.append((f"scale_heads.{t}.{kind}", getattr(ours.scale_heads[t], kind),
                          getattr(theirs.scale_encoder[t], kind)))
    pairs.append(("gene_embedding", ours.gene_embedding, theirs.decoder[0].rho))
    for t in range(len(TOPICS)):
        pairs.append((f"topic_embeddings.{t}", ours.topic_embeddings[t], theirs.decoder[t].alphas))
    return pairs


def compare(a: Any, b: Any) -> dict[str, float | bool]:
    """Largest differences of ``a`` against ``b``: elementwise relative and relative to ``max |b|``."""
    a, b = a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()
    scale = float(np.abs(b).max()) or 1.0
    diff = np.abs(a - b)
    # elementwise rtol with an absolute floor 1e-9 of the tensor's scale (entries that cancel to ~0)
    ok = bool(np.all(diff <= RTOL * np.abs(b) + 1e-9 * scale))
    return {"max_rel_elementwise": float((diff / np.maximum(np.abs(b), 1e-300)).max()),
            "max_rel_to_scale": float(diff.max() / scale), "allclose": ok}


# ----------------------------------------------------------------------------- the check
def run_check(ref_dir: Path, data_dir: Path, seed: int, prior_dir: Path | None = None) -> dict[str, Any]:
    """The float64 check; with ``prior_dir`` (the authors' ``datasets/``) on their masked encoder."""
    import pandas as pd
    import torch
    from topiceval.models.dscigm import (
        DeepWeibullTopicModel,
        DSCIGMConfig,
        TrainingOptions,
        TrainingStep,
        read_hierarchical_prior,
    )

    table = pd.read_csv(Path(data_dir) / DATA_FILE, index_col=0)
    x_all = table.to_numpy(dtype=np.float64)
    n_genes = x_all.shape[1]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x_all), size=64, replace=False)
    batches = [x_all[np.sort(rows[:32])], x_all[np.sort(rows[32:])]]

    ref = import_reference(ref_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = reference_data_dir(work, data_dir, prior_dir)
        args = reference_args(folder, work, n_genes, epochs=1)
        torch.manual_seed(seed)
        started = time.perf_counter()
        trainer = dense_reference_trainer(ref, args, masked=prior_dir is not None)
        build_s = time.perf_counter() - started
        theirs = trainer.model.double()
        masks = None
        if prior_dir is None:
            config = DSCIGMConfig(n_genes=n_genes, topic_sizes=TOPICS, hidden_sizes=HIDDEN)
        else:
            from topiceval.models.dscigm.prior import STRING_LINKS_FILE

            tree = read_hierarchical_prior(prior_dir, string_links=(folder / STRING_LINKS_FILE).stat().st_size > 0)
            masks = [torch.from_numpy(m.T.toarray().astype(np.float64)) for m in tree.masks(list(table.columns))]
            config = DSCIGMConfig(n_genes=n_genes, topic_sizes=TOPICS, hidden_sizes=tree.sizes,
                                  pathways=tuple(tree.levels[-1]), masked_layers=len(TOPICS), mask_init="authors")
        torch.manual_seed(seed + 1)
        ours = DeepWeibullTopicModel(config, masks).double()
        pairs = parameter_pairs(ours, theirs)
        with torch.no_grad():
            for _, mine, other in pairs:
                other.copy_(mine.detach())
        initial = [p.detach().clone() for _, p, _ in pairs]

        def draws(n_passes: int) -> list[torch.Tensor]:
            gen = np.random.default_rng(seed + 2)
            out = []
            for _ in range(n_passes):
                for k in reversed(TOPICS):  # top layer first, as both codes sample
                    out.append(torch.from_numpy(gen.random((config.n_samples, 32, k))))
            return out

        def feed(noise: list[torch.Tensor]):
            queue = list(noise)

            def source(shape, dtype, device):
                u = queue.pop(0)
                assert tuple(u.shape) == tuple(shape), (u.shape, shape)
                return u.to(dtype)
            return source

        def their_noise(noise: list[torch.Tensor]) -> list[torch.Tensor]:
            return [u.transpose(1, 2).contiguous() for u in noise]

        report: dict[str, Any] = {"data": str(Path(data_dir) / DATA_FILE), "cells_per_batch": 32,
                                  "dtype": "float64", "rtol": RTOL, "encoder": "dense" if masks is None else
                                  "masked (the authors' hierarchy)", "reference_build_s": build_s}
        if masks is not None:
            # the connections topiceval builds from their files against the masks their code builds
            report["masks_equal"] = [bool(torch.equal(ours.encoder[t].mask.double(), theirs.h_encoder[t].mask.double()))
                                     for t in range(len(TOPICS))]
            report["mask_connections"] = [int(m.sum()) for m in masks]
        # -- 1. loss terms and gradients of one forward pass
        noise = draws(1)
        model_mod = ref["model"]
        real_torch = model_mod.torch
        model_mod.torch = _TorchStandIn(torch, noise=their_noise(noise))
        x = torch.from_numpy(batches[0])
        try:
            _, _, losses, _, _, _, _ = theirs(x)
        finally:
            model_mod.torch = real_torch
        ref_terms = [losses[0]] + list(losses[1:])  # NLL, KL of layers 0..4, top KL
        ref_total = sum(losses[:-1]) + args.rate * losses[-1]
        ref_total.backward()
        out = ours(x, x, sample=True, noise=feed(noise))
        out["loss"].backward()
        our_terms = [out["nll"], *out["kl"]]
        names = ["nll"] + [f"kl_layer{t}" for t in range(len(TOPICS))]
        report["loss_terms"] = {
            n: {"ours": a.item(), "authors": b.item(), "rel_diff": abs(a.item() - b.item()) / max(abs(b.item()), 1e-300)}
            for n, a, b in zip(names, our_terms, ref_terms, strict=True)}
        report["gradients"] = {n: compare(a.grad, b.grad) for n, a, b in pairs}

        # -- 2. two training steps (one epoch of two minibatches), from the same initial weights
        with torch.no_grad():
            for (_, mine, other), start in zip(pairs, initial, strict=True):
                mine.copy_(start)
                other.copy_(start)
                mine.grad = other.grad = None
        for p in theirs.parameters():
            p.grad = None
        noise = draws(4)  # 2 minibatches x (encoder pass, decoder pass)
        step = TrainingStep(ours, TrainingOptions(lr=args.lr, clip_norm=100.0))
        ours.train()
        after: list[list[torch.Tensor]] = []
        source = feed(noise)
        for b in batches:
            xb = torch.from_numpy(b)
            step(xb, xb, None, noise=source)
            after.append([p.detach().clone() for _, p, _ in pairs])
        trainer_mod = ref["trainer"]
        snapshots: list[list[torch.Tensor]] = []

        class _Loader(list):
            def __iter__(self):
                for i, item in enumerate(list.__iter__(self)):
                    if i:  # the previous minibatch's two steps are done
                        snapshots.append([p.detach().clone() for _, _, p in pairs])
                    yield item

        loader = _Loader([(b, np.zeros(len(b))) for b in batches])
        model_mod.torch = _TorchStandIn(torch, noise=their_noise(noise))
        trainer_mod.torch = _TorchStandIn(torch, float_dtype=torch.float64, save=lambda *a, **k: None)
        try:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                trainer.train(loader, None)
        finally:
            model_mod.torch = real_torch
            trainer_mod.torch = torch
        snapshots.append([p.detach().clone() for _, _, p in pairs])
        for i in range(2):
            report[f"parameters_after_step{i + 1}"] = {
                n: compare(a, b) for (n, _, _), a, b in zip(pairs, after[i], snapshots[i], strict=True)}
            moved = max(float((b - a0).abs().max()) for b, a0 in zip(snapshots[i], after[0], strict=True)) if i else None
            report[f"parameters_after_step{i + 1}_moved"] = moved
    return report


def summarise_check(report: dict[str, Any]) -> tuple[bool, list[str]]:
    lines, ok = [f"encoder: {report['encoder']}"], True
    if "masks_equal" in report:
        ok &= all(report["masks_equal"])
        lines.append(f"masks built from the authors' files equal to theirs, layer by layer: {report['masks_equal']} "
                     f"(connections {report['mask_connections']})")
    worst = max(v["rel_diff"] for v in report["loss_terms"].values())
    ok &= worst <= RTOL
    terms = ", ".join(f"{k} {v['authors']:.6g}" for k, v in report["loss_terms"].items())
    lines.append(f"loss terms: largest relative difference {worst:.2e} (authors' values: {terms})")
    for key in ("gradients", "parameters_after_step1", "parameters_after_step2"):
        table = report[key]
        good = all(v["allclose"] for v in table.values())
        ok &= good
        worst_el = max(v["max_rel_elementwise"] for v in table.values())
        worst_sc = max(v["max_rel_to_scale"] for v in table.values())
        bad = [k for k, v in table.items() if not v["allclose"]]
        lines.append(f"{key}: {len(table)} tensors, all within rtol {RTOL}: {good}; largest difference relative "
                     f"to the tensor's max |value| {worst_sc:.2e}, elementwise {worst_el:.2e}"
                     + (f"; failing: {', '.join(bad)}" if bad else ""))
    return ok, lines


# ----------------------------------------------------------------------------- speed and memory
def _current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRSS:
    """Largest resident set size while the block runs, sampled every 20 ms by a thread."""

    def __enter__(self) -> _PeakRSS:
        import threading

        self.peak = _current_rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _current_rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_mib())


def worker(side: str, ref_dir: Path | None, data_dir: Path, epochs: int, threads: int, seed: int) -> dict[str, Any]:
    import pandas as pd
    import torch

    torch.set_num_threads(threads)
    if side == "ours":
        from topiceval.models.dscigm import DSCIGM, DSCIGMConfig, TrainingOptions

        table = pd.read_csv(Path(data_dir) / DATA_FILE, index_col=0)
        x = table.to_numpy(dtype=np.float32)
        base = _current_rss_mib()
        model = DSCIGM(DSCIGMConfig(n_genes=x.shape[1]), list(table.columns), seed=seed)
        built = _current_rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        with _PeakRSS() as peak:
            model.fit(x, TrainingOptions(epochs=epochs, progress=False), seed=seed)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
        epoch_s = [h["seconds"] for h in model.history]
    else:
        ref = import_reference(ref_dir)
        torch.manual_seed(seed)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            folder = reference_data_dir(work, data_dir)
            n_genes = pd.read_csv(folder / DATA_FILE, index_col=0, nrows=1).shape[1]
            args = reference_args(folder, work, n_genes, epochs)
            loader, _ = ref["mydataset"].dataloader(data_path=args.dataset_dir, labelname=LABEL_FILE,
                                                    dataname=DATA_FILE, mode="train", batch_size=32,
                                                    num_workers=0)
            base = _current_rss_mib()
            trainer = dense_reference_trainer(ref, args)
            built = _current_rss_mib()
            stamps: list[float] = []

            class _Stamps:
                def write(self, text: str) -> int:
                    if text.startswith("epoch "):
                        stamps.append(time.perf_counter())
                    return len(text)

                def flush(self) -> None:
                    pass

            ref["trainer"].torch = _TorchStandIn(torch, save=lambda *a, **k: None)  # no checkpoints
            started, cpu = time.perf_counter(), time.process_time()
            with _PeakRSS() as peak, contextlib.redirect_stdout(_Stamps()):
                trainer.train(loader, None)
            total, cpu = time.perf_counter() - started, time.process_time() - cpu
            edges = [started, *stamps]
            epoch_s = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    return {"side": side, "threads": threads, "epochs": epochs, "epoch_s": epoch_s, "total_s": total,
            "cpu_s_per_epoch": cpu / epochs,
            "rss_before_model_mib": base, "rss_model_built_mib": built, "peak_rss_training_mib": peak.peak,
            "training_rss_growth_mib": peak.peak - base}


def run_speed(ref_dir: Path, data_dir: Path, epochs: int, rounds: int, threads: int, seed: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "authors": []}
    for r in range(rounds):
        for side in ("ours", "authors") if r % 2 == 0 else ("authors", "ours"):
            cmd = [sys.executable, __file__, "--worker", side, "--ref-dir", str(ref_dir), "--data", str(data_dir),
                   "--epochs", str(epochs), "--threads", str(threads), "--seed", str(seed)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{side} worker failed:\n{done.stderr[-4000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[side].append(result)
            print(f"  round {r + 1} {side}: median epoch {median(result['epoch_s']):.2f} s "
                  f"(CPU {result['cpu_s_per_epoch']:.2f} s an epoch), "
                  f"peak RSS in training {result['peak_rss_training_mib']:.0f} MiB", flush=True)
    summary = {}
    for side, results in runs.items():
        # the first epoch of a run pays one-off allocation costs: medians over all epochs of all rounds
        summary[side] = {"median_epoch_s": median(s for res in results for s in res["epoch_s"]),
                         "cpu_s_per_epoch": median(res["cpu_s_per_epoch"] for res in results),
                         "peak_rss_training_mib": median(res["peak_rss_training_mib"] for res in results),
                         "training_rss_growth_mib": median(res["training_rss_growth_mib"] for res in results)}
    summary["ratio_epoch_time_ours_over_authors"] = summary["ours"]["median_epoch_s"] / summary["authors"]["median_epoch_s"]
    summary["ratio_cpu_time_ours_over_authors"] = summary["ours"]["cpu_s_per_epoch"] / summary["authors"]["cpu_s_per_epoch"]
    summary["ratio_training_rss_growth_ours_over_authors"] = (summary["ours"]["training_rss_growth_mib"]
                                                              / summary["authors"]["training_rss_growth_mib"])
    return {"runs": runs, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref-dir", type=Path, required=True, help="checkout of nbnbhwyy/d-scIGM")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder holding {DATA_FILE} and {LABEL_FILE} (default: the shared Yan data)")
    parser.add_argument("--check", action="store_true", help="run the float64 equivalence check")
    parser.add_argument("--masked", action="store_true",
                        help="also check the masked encoder built from the authors' hierarchy (REF_DIR/datasets)")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed and memory comparison")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per side (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per side (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the full report as JSON here")
    parser.add_argument("--worker", choices=("ours", "authors"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.ref_dir, args.data, args.epochs, args.threads, args.seed)))
        return 0
    report: dict[str, Any] = {"threads": args.threads}
    status = 0
    if args.check:
        import torch

        torch.set_num_threads(args.threads)
        started = time.perf_counter()
        report["check"] = run_check(args.ref_dir, args.data, args.seed)
        ok, lines = summarise_check(report["check"])
        print(f"equivalence check (float64, {time.perf_counter() - started:.0f} s): {'PASS' if ok else 'FAIL'}")
        for line in lines:
            print("  " + line)
        status |= 0 if ok else 1
        if args.masked:
            started = time.perf_counter()
            report["check_masked"] = run_check(args.ref_dir, args.data, args.seed, prior_dir=args.ref_dir / "datasets")
            ok, lines = summarise_check(report["check_masked"])
            print(f"equivalence check, masked encoder (float64, {time.perf_counter() - started:.0f} s, of which "
                  f"{report['check_masked']['reference_build_s']:.0f} s their mask construction): "
                  f"{'PASS' if ok else 'FAIL'}")
            for line in lines:
                print("  " + line)
            status |= 0 if ok else 1
    if not args.no_speed:
        print(f"speed and memory: {args.rounds} rounds x {args.epochs} epochs per side, {args.threads} thread(s)")
        report["speed"] = run_speed(args.ref_dir, args.data, args.epochs, args.rounds, args.threads, args.seed)
        s = report["speed"]["summary"]
        print(f"  median epoch: ours {s['ours']['median_epoch_s']:.2f} s, authors {s['authors']['median_epoch_s']:.2f} s, "
              f"ratio ours/authors {s['ratio_epoch_time_ours_over_authors']:.3f}; CPU seconds an epoch: ours "
              f"{s['ours']['cpu_s_per_epoch']:.2f}, authors {s['authors']['cpu_s_per_epoch']:.2f}, ratio "
              f"{s['ratio_cpu_time_ours_over_authors']:.3f}")
        print(f"  peak RSS in training: ours {s['ours']['peak_rss_training_mib']:.0f} MiB, authors "
              f"{s['authors']['peak_rss_training_mib']:.0f} MiB; above the process before the model was built: ours "
              f"{s['ours']['training_rss_growth_mib']:.0f} MiB, authors {s['authors']['training_rss_growth_mib']:.0f} MiB "
              f"(ratio {s['ratio_training_rss_growth_ours_over_authors']:.2f})")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
