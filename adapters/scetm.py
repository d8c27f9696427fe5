"""scETM (Zhao et al. 2021), from the PyPI package ``scETM==0.5.0``.

Install: ``pip install "topiceval[scetm]"`` after ``pip install torch==2.13.0`` (CPU) — the extra
pins ``scETM==0.5.0`` and adds what it imports but does not declare (``tensorboard``), and
``louvain>=0.8`` so that pip takes louvain's wheels rather than building 0.7.x from source.

What this adapter does around the package:

* input: ``layers["counts"]`` (raw counts; scETM normalises by library size itself) as a CSR
  ``float32`` ``X`` of a fresh AnnData, one batch;
* seeding: the model's weights come from torch's global RNG and the minibatch sampler
  (``CellSampler``) draws from an unseeded ``numpy.random.default_rng()``; the call runs with the
  global RNGs seeded and restored afterwards, and the sampler gets ``default_rng(seed)``;
* ``eval=False`` (the package's in-training evaluation crashes), no checkpoints, its console line
  and INFO logs silenced (``progress=True`` keeps its line);
* outputs:

  - ``topic_gene`` = ``alpha @ rho`` (topic embeddings ``(K, L)`` times gene embeddings
    ``(L, V)``; ``alpha @ rho.T`` with ``rho`` as stored in ``adata.varm["rho"]``): the decoder's
    topic-gene logits, not normalised (softmax per topic would not change any ranking);
  - ``cell_topic`` = ``theta``, the softmax of the encoder mean (rows sum to 1), from
    ``get_all_embeddings_and_nll``;
  - ``cell_embedding`` = ``delta``, the encoder mean before the softmax (scETM clusters on it).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from topiceval.adapters._common import (
    COUNTS_LAYER,
    check_positive_int,
    default_threads,
    gene_names,
    global_seed,
    import_extra,
    model_input,
    parse_options,
    resolve_progress,
    quiet_loggers,
    torch_threads,
    trim_heap,
    warn_if_not_counts,
)
from topiceval.adapters.registry import TrainParams, TrainResult

from topiceval.io import write_json
from topiceval.protocol import TopicOutputs

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["DEFAULTS", "DEFAULT_EPOCHS", "DEFAULT_TOPICS", "EXTRA", "fit", "load", "train"]

EXTRA = "scetm"
DEFAULT_TOPICS = 50
DEFAULT_EPOCHS = 800
#: Model options and their defaults (scETM's own defaults).
DEFAULTS: dict[str, Any] = {
    "emb_dim": 400,  # trainable gene embedding dimension L
    "hidden_sizes": (128,),
    "batch_size": 2000,
    "lr": 5e-3,
    "lr_decay": 6e-5,
    "dropout": 0.1,
    "batch_norm": True,
    "normalize_beta": False,
    "kl_warmup_ratio": 1 / 3,
    "max_kl_weight": 1e-7,
    "threads": default_threads(),
    "device": "cpu",
    "progress": False,
}


def _import_scetm() -> Any:
    import_extra("torch", EXTRA, "scetm")
    import_extra("tensorboard", EXTRA, "scetm")
    return import_extra("scETM", EXTRA, "scetm")


@contextlib.contextmanager
def _seeded_sampler(seed: int):
    """Give scETM's minibatch sampler a seeded generator (it creates an unseeded one)."""
    import importlib

    # the submodule itself: the package attribute of the same name is the class
    trainer_module = importlib.import_module("scETM.trainers.UnsupervisedTrainer")
    original = trainer_module.CellSampler
    trainer_module.CellSampler = functools.partial(original, rng=np.random.default_rng(seed))
    try:
        yield
    finally:
        trainer_module.CellSampler = original


#: Training steps between two :func:`~topiceval.adapters._common.trim_heap` calls.
TRIM_EVERY = 100


@contextlib.contextmanager
def _trim_heap_every(trainer: Any, steps: int) -> Iterator[None]:
    """Trim the C heap every ``steps`` training steps (scETM's ``update_step`` runs once a step),
    so that a long run does not grow by the freed memory glibc keeps (see ``trim_heap``)."""
    original = trainer.update_step
    count = 0

    def update_step(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        if count % steps == 0:
            trim_heap()
        return original(*args, **kwargs)

    trainer.update_step = update_step  # this trainer only: an instance attribute
    try:
        yield
    finally:
        del trainer.update_step


def train(adata: AnnData, params: TrainParams) -> TrainResult:
    """Registry trainer: train scETM on ``adata`` (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes; the input is ``layers["counts"]`` unless ``params.layer`` names another.
    params
        ``n_topics`` (default 50), ``epochs`` (default 800), ``seed`` and the options of
        :data:`DEFAULTS`.

    Returns
    -------
    TrainResult
        ``topic_gene`` ``(n_topics, n_genes)`` logits, ``cell_topic`` ``(n_cells, n_topics)``,
        ``cell_embedding`` ``(n_cells, n_topics)``; ``save`` writes ``weights.pt`` (the
        ``state_dict``) and ``model.json``.
    """
    scetm_pkg = _import_scetm()
    import anndata
    import torch

    options = parse_options(params.options, DEFAULTS, "scetm")
    options["progress"] = bool(resolve_progress(options, params.options, params.progress))
    n_topics = check_positive_int(params.n_topics or DEFAULT_TOPICS, "n_topics", 2)
    epochs = check_positive_int(params.epochs or DEFAULT_EPOCHS, "epochs")
    batch_size = check_positive_int(options["batch_size"], "batch_size")
    data = model_input(adata, params.layer, default=COUNTS_LAYER, model="scetm")
    warn_if_not_counts(data, "scetm")
    import scipy.sparse as sp

    counts = anndata.AnnData(X=sp.csr_matrix(data.matrix, dtype=np.float32))
    counts.obs_names = [str(i) for i in range(adata.n_obs)]
    counts.var_names = [str(g) for g in gene_names(adata)]
    device = torch.device(options["device"])
    hidden = tuple(int(h) for h in options["hidden_sizes"])
    settings = {
        "n_trainable_genes": int(adata.n_vars), "n_batches": 1, "n_topics": n_topics,
        "trainable_gene_emb_dim": int(options["emb_dim"]), "hidden_sizes": list(hidden),
        "bn": bool(options["batch_norm"]), "dropout_prob": float(options["dropout"]),
        "normalize_beta": bool(options["normalize_beta"]),
    }

    started = time.perf_counter()
    # scETM prints its progress on stdout: on stderr when asked for, else nowhere
    sink = contextlib.redirect_stdout(sys.stderr if options["progress"] else io.StringIO())
    with (torch_threads(options["threads"]), global_seed(params.seed), _seeded_sampler(params.seed),
          quiet_loggers("scETM", level=logging.ERROR), sink):
        model = scetm_pkg.scETM(**{**settings, "hidden_sizes": hidden}, device=device)
        trainer = scetm_pkg.UnsupervisedTrainer(
            model, counts, ckpt_dir=None, init_lr=float(options["lr"]),
            lr_decay=float(options["lr_decay"]), batch_size=batch_size, seed=-1,
        )
        with tempfile.TemporaryDirectory(prefix="topiceval-scetm-") as tmp, _trim_heap_every(trainer, TRIM_EVERY):
            record = Path(tmp) / "record.tsv"
            trainer.train(
                n_epochs=epochs, eval_every=epochs, n_samplers=1, eval=False,
                kl_warmup_ratio=float(options["kl_warmup_ratio"]),
                max_kl_weight=float(options["max_kl_weight"]),
                save_model_ckpt=False, record_log_path=str(record),
            )
            history = _read_record(record)
        with torch.no_grad():
            embeddings, nll = model.get_all_embeddings_and_nll(
                counts, batch_size=batch_size, emb_names=["delta", "theta"], inplace=False)
    fitted = time.perf_counter()

    alpha = np.asarray(embeddings["alpha"], dtype=np.float64)  # (K, L)
    rho = np.asarray(embeddings["rho"], dtype=np.float64)  # (V, L)
    outputs = TopicOutputs(
        topic_gene=alpha @ rho.T,
        gene_names=gene_names(adata),
        cell_topic=np.asarray(embeddings["theta"], dtype=np.float64),
        cell_embedding=np.asarray(embeddings["delta"], dtype=np.float64),
        name="scetm",
        metadata={"model": "scetm", "seed": params.seed, "input": data.source},
    )
    hyper = {"n_topics": n_topics, "epochs": epochs, "seed": params.seed, "input": data.source,
             **{k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()
                if k not in ("progress",)}}
    info = {"fit_s": fitted - started, "nll": None if nll is None else float(nll),
            "final_loss": history[-1] if history else None, "steps": len(history),
            "scETM": _version("scETM")}

    def save(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), folder / "weights.pt")
        write_json({"model": "scetm", "scETM_version": info["scETM"], "settings": settings,
                    "gene_names": [str(g) for g in gene_names(adata)]}, folder / "model.json")

    return TrainResult(outputs=outputs, hyperparameters=hyper, save=save, info=info)


def _read_record(path: Path) -> list[float]:
    """Training losses per step from scETM's record file (empty if it wrote none)."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    if "loss" not in header:
        return []
    column = header.index("loss")
    return [float(line.split("\t")[column]) for line in lines[1:] if line.strip()]


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return None


def load(folder: str | Path) -> Any:
    """Rebuild a trained scETM model from ``DIR/model`` (weights read with ``weights_only=True``).

    Returns
    -------
    scETM.scETM
        On the CPU, in eval mode.
    """
    import json

    scetm_pkg = _import_scetm()
    import torch

    folder = Path(folder)
    meta = json.loads((folder / "model.json").read_text())
    settings = dict(meta["settings"])
    settings["hidden_sizes"] = tuple(settings["hidden_sizes"])
    with quiet_loggers("scETM", level=logging.ERROR):
        model = scetm_pkg.scETM(**settings, device=torch.device("cpu"))
    state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


def fit(adata: AnnData, n_topics: int | None = None, *, epochs: int | None = None, seed: int = 0,
        layer: str | None = None, **options: Any) -> TopicOutputs:
    """Train scETM and return its :class:`~topiceval.protocol.TopicOutputs` (see :func:`train`)."""
    params = TrainParams(n_topics=n_topics, epochs=epochs, seed=seed, layer=layer, options=options)
    return train(adata, params).outputs
