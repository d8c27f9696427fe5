"""Training, inference, saving and loading of d-scIGM (:class:`DSCIGM`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from topiceval.errors import InputError
from topiceval.io import atomic_path, write_json

from .model import DeepWeibullTopicModel, DSCIGMConfig, as_float_tensor

__all__ = ["DSCIGM", "TrainingOptions"]

WEIGHTS_FILE = "weights.pt"
SETTINGS_FILE = "model.json"


class TrainingOptions:
    """Optimisation settings of :meth:`DSCIGM.fit` (authors: Adam, lr 1e-2, batch 32, 500 epochs).

    Parameters
    ----------
    epochs, batch_size, lr, weight_decay
        Adam on minibatches of cells drawn without replacement in a new order every epoch.
    clip_norm
        Gradient-norm clipping (authors: 100).
    progress
        tqdm bar over epochs (``None``: only on a terminal).
    """

    def __init__(self, epochs: int = 500, batch_size: int = 32, lr: float = 1e-2,
                 weight_decay: float = 0.0, clip_norm: float = 100.0, progress: bool | None = None) -> None:
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.clip_norm = float(clip_norm)
        self.progress = progress
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise InputError("epochs and batch_size must be >= 1 and lr > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable settings (without ``progress``, which changes no number)."""
        return {k: v for k, v in vars(self).items() if k != "progress"}


class DSCIGM:
    """d-scIGM: a deep Weibull topic model with a sawtooth embedded decoder.

    Parameters
    ----------
    config
        Architecture (:class:`~topiceval.models.dscigm.model.DSCIGMConfig`).
    gene_names
        The ``n_genes`` genes, in input order.
    mask
        ``(n_genes, n_pathways)`` boolean CSR of a gene -> pathway prior (see
        :func:`~topiceval.models.dscigm.prior.pathway_mask`), or ``None`` for the dense encoder.
    seed
        Seed of the weight initialisation (a forked torch RNG: the global state is untouched).

    Examples
    --------
    >>> model = DSCIGM(DSCIGMConfig(n_genes=adata.n_vars), adata.var_names)  # doctest: +SKIP
    >>> model.fit(adata.X, TrainingOptions(epochs=100), seed=0)  # doctest: +SKIP
    >>> theta = model.transform(adata.X)[0]  # (n_cells, K_0)  # doctest: +SKIP
    """

    def __init__(self, config: DSCIGMConfig, gene_names: Sequence[str], mask: sp.spmatrix | None = None,
                 *, seed: int = 0) -> None:
        self.config = config
        self.gene_names = [str(g) for g in gene_names]
        if len(self.gene_names) != config.n_genes:
            raise InputError(f"{len(self.gene_names)} gene names for a model of {config.n_genes} genes")
        mask_tensor = None
        if mask is not None:
            mask = sp.csr_matrix(mask)
            if mask.shape != (config.n_genes, len(config.pathways)):
                raise InputError(f"the pathway mask has shape {mask.shape}, expected "
                                 f"({config.n_genes}, {len(config.pathways)})")
            mask_tensor = torch.from_numpy(mask.T.toarray().astype(np.float32))
        self._mask = mask
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.network = DeepWeibullTopicModel(config, mask_tensor)
        self.history: list[dict[str, float]] = []
        self.training_options: TrainingOptions | None = None

    # ------------------------------------------------------------------ training
    def _encoder_input(self, block: torch.Tensor) -> torch.Tensor:
        return torch.log1p(block) if self.config.encoder_log1p else block

    def fit(self, x: np.ndarray | sp.spmatrix, options: TrainingOptions | None = None, *, seed: int = 0) -> DSCIGM:
        """Train on ``x`` ``(n_cells, n_genes)`` (non-negative; CSR stays sparse between batches).

        Every random step (cell order, Weibull noise) comes from ``seed``; a step whose loss is
        not finite is skipped and counted in :attr:`history`.
        """
        from tqdm.auto import tqdm

        options = options or TrainingOptions()
        self.training_options = options
        x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.config.n_genes:
            raise InputError(f"expected (n_cells, {self.config.n_genes}) input, got shape {x.shape}")
        n_cells = x.shape[0]
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        optimizer = torch.optim.Adam(self.network.parameters(), lr=options.lr,
                                     weight_decay=options.weight_decay)
        self.network.train()
        n_batches = math.ceil(n_cells / options.batch_size)
        bar = tqdm(range(options.epochs), desc="d-scIGM", unit="epoch",
                   disable=(not options.progress) if options.progress is not None else None)
        for epoch in bar:
            order = rng.permutation(n_cells)
            total = nll_total = 0.0
            skipped = 0
            for b in range(n_batches):
                rows = np.sort(order[b * options.batch_size:(b + 1) * options.batch_size])
                target = as_float_tensor(x, rows)
                out = self.network(self._encoder_input(target), target, sample=True, generator=generator)
                loss = out["loss"]
                if not torch.isfinite(loss):
                    skipped += 1
                    optimizer.zero_grad(set_to_none=True)
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), options.clip_norm)
                optimizer.step()
                total += float(loss.detach()) * len(rows)
                nll_total += float(out["nll"].detach()) * len(rows)
            record = {"epoch": epoch + 1, "loss": total / n_cells, "nll": nll_total / n_cells,
                      "skipped_steps": skipped}
            self.history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4g}")
        self.network.eval()
        return self

    # ------------------------------------------------------------------ outputs
    def transform(self, x: np.ndarray | sp.spmatrix, batch_size: int = 1024) -> list[np.ndarray]:
        """Posterior-mean topic weights of every layer: a list of ``(n_cells, K_t)`` arrays."""
        x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.config.n_genes:
            raise InputError(f"expected (n_cells, {self.config.n_genes}) input, got shape {x.shape}")
        self.network.eval()
        parts: list[list[np.ndarray]] = [[] for _ in range(self.config.n_layers)]
        for start in range(0, x.shape[0], batch_size):
            block = as_float_tensor(x, np.arange(start, min(start + batch_size, x.shape[0])))
            for t, theta in enumerate(self.network.transform(self._encoder_input(block))):
                parts[t].append(theta.numpy().astype(np.float64))
        return [np.concatenate(p, axis=0) for p in parts]

    def topic_gene(self, layer: int = 0) -> np.ndarray:
        """Gene distribution of every topic of ``layer`` ``(K_layer, n_genes)``; rows sum to 1."""
        if not 0 <= layer < self.config.n_layers:
            raise InputError(f"layer must be in 0..{self.config.n_layers - 1}, got {layer}")
        self.network.eval()
        return self.network.topic_gene(layer).numpy().astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        """Write ``weights.pt`` (the state dict) and ``model.json`` (settings, genes, history)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS_FILE, suffix=".pt") as tmp:
            torch.save(self.network.state_dict(), tmp)
        mask = None
        if self._mask is not None:
            coo = self._mask.tocoo()
            mask = {"rows": coo.row.tolist(), "cols": coo.col.tolist()}
        write_json({
            "model": "dscigm",
            "config": self.config.to_dict(),
            "training": None if self.training_options is None else self.training_options.to_dict(),
            "gene_names": self.gene_names,
            "mask": mask,
            "history": self.history,
            "torch": torch.__version__,
        }, folder / SETTINGS_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> DSCIGM:
        """Read a model written by :meth:`save` (weights loaded with ``weights_only=True``)."""
        folder = Path(folder)
        settings_path, weights_path = folder / SETTINGS_FILE, folder / WEIGHTS_FILE
        for path in (settings_path, weights_path):
            if not path.is_file():
                raise InputError(f"not a saved d-scIGM model: {path} is missing")
        meta = json.loads(settings_path.read_text())
        if meta.get("model") != "dscigm":
            raise InputError(f"{settings_path} is not a d-scIGM model (model = {meta.get('model')!r})")
        config = DSCIGMConfig.from_dict(meta["config"])
        mask = None
        if meta.get("mask") is not None:
            m = meta["mask"]
            mask = sp.csr_matrix((np.ones(len(m["rows"]), dtype=bool), (m["rows"], m["cols"])),
                                 shape=(config.n_genes, len(config.pathways)))
        model = cls(config, meta["gene_names"], mask)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.network.load_state_dict(state)
        model.network.eval()
        model.history = list(meta.get("history", []))
        if meta.get("training") is not None:
            model.training_options = TrainingOptions(**meta["training"])
        return model

    def __repr__(self) -> str:
        kind = f"{len(self.config.pathways)} pathways" if self.config.pathways else "dense"
        return (f"DSCIGM({self.config.n_genes} genes, topics {list(self.config.topic_sizes)}, "
                f"encoder {kind})")
