"""Training, inference, saving and loading of d-scIGM (:class:`DSCIGM`)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from topiceval._checkpoint import hash_array, hash_tensors, load_state, save_state
from topiceval.errors import InputError
from topiceval.io import atomic_path, write_json

from .model import DeepWeibullTopicModel, DSCIGMConfig, Noise, as_float_tensor

__all__ = ["DSCIGM", "SCHEDULES", "TrainingOptions", "TrainingStep"]

WEIGHTS_FILE = "weights.pt"
SETTINGS_FILE = "model.json"


SCHEDULES = ("authors", "alternating", "joint")


class TrainingOptions:
    """Optimisation settings of :meth:`DSCIGM.fit` (defaults: the authors' ``trainer.py``).

    Parameters
    ----------
    epochs, batch_size, lr, weight_decay
        Adam (authors: lr 1e-2, no weight decay, batch 32, 500 epochs) on minibatches of cells
        drawn without replacement in a new order every epoch.
    clip_norm
        Gradient-norm clipping (authors: 100).
    schedule
        ``"authors"`` (default): per minibatch, an encoder step then a decoder step, each after
        its own forward pass, with two Adam optimisers (encoder: upward layers and Weibull heads;
        decoder: gene and topic embeddings), gradients kept exactly as the authors' code keeps
        them: both passes back-propagate into every parameter and each optimiser zeroes only its
        own, so the encoder step also sees the previous decoder pass's encoder gradient and the
        decoder step also sees this encoder pass's (clipped) decoder gradient; the encoder step
        clips the norm over all parameters, the decoder step over the decoder's.
        ``"alternating"``: the same two passes and optimisers, each step on its own pass's
        gradient only (the second pass back-propagates into the decoder alone: faster).
        ``"joint"``: topiceval 0.1's single Adam step per minibatch on all parameters.
    drop_last
        Drop the last partial minibatch of every epoch (authors: yes).
    progress
        tqdm bar over epochs (``None``: only on a terminal).
    """

    def __init__(self, epochs: int = 500, batch_size: int = 32, lr: float = 1e-2,
                 weight_decay: float = 0.0, clip_norm: float = 100.0, schedule: str = "authors",
                 drop_last: bool = True, progress: bool | None = None) -> None:
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.clip_norm = float(clip_norm)
        self.schedule = str(schedule)
        self.drop_last = bool(drop_last)
        self.progress = progress
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise InputError("epochs and batch_size must be >= 1 and lr > 0")
        if self.schedule not in SCHEDULES:
            raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")

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
        :func:`~topiceval.models.dscigm.prior.pathway_mask`), a list of ``(n_in, n_out)`` CSRs for
        the ``config.masked_layers`` bottom encoder layers (the authors' hierarchy:
        :meth:`~topiceval.models.dscigm.prior.HierarchicalPrior.masks`), or ``None`` (dense).
    seed
        Seed of the weight initialisation (a forked torch RNG: the global state is untouched).

    Examples
    --------
    >>> model = DSCIGM(DSCIGMConfig(n_genes=adata.n_vars), adata.var_names)  # doctest: +SKIP
    >>> model.fit(adata.X, TrainingOptions(epochs=100), seed=0)  # doctest: +SKIP
    >>> theta = model.transform(adata.X)[0]  # (n_cells, K_0)  # doctest: +SKIP
    """

    def __init__(self, config: DSCIGMConfig, gene_names: Sequence[str],
                 mask: sp.spmatrix | Sequence[sp.spmatrix] | None = None, *, seed: int = 0) -> None:
        self.config = config
        self.gene_names = [str(g) for g in gene_names]
        if len(self.gene_names) != config.n_genes:
            raise InputError(f"{len(self.gene_names)} gene names for a model of {config.n_genes} genes")
        masks = [] if mask is None else [mask] if sp.issparse(mask) else list(mask)
        masks = [sp.csr_matrix(m, dtype=bool) for m in masks]
        if len(masks) != config.masked_layers:
            raise InputError(f"{len(masks)} masks for a model with {config.masked_layers} masked encoder layers")
        widths = (config.n_genes, *config.hidden_sizes)
        for t, m in enumerate(masks):
            if m.shape != (widths[t], widths[t + 1]):
                raise InputError(f"mask {t} has shape {m.shape}, expected ({widths[t]}, {widths[t + 1]})")
        self._masks = masks
        tensors = [torch.from_numpy(m.T.toarray().astype(np.float32)) for m in masks]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.network = DeepWeibullTopicModel(config, tensors or None)
        self.history: list[dict[str, float]] = []
        self.resumed_at_epoch = 0
        self.training_options: TrainingOptions | None = None

    # ------------------------------------------------------------------ training
    def _encoder_input(self, block: torch.Tensor) -> torch.Tensor:
        block = torch.log1p(block) if self.config.encoder_log1p else block
        return block - self.network.input_offset if self.config.encoder_center else block

    def _set_input_offset(self, x: np.ndarray | sp.csr_matrix) -> None:
        """The training cells' mean encoder input per gene (``encoder_center``)."""
        if sp.issparse(x):
            values = x.copy()
            if self.config.encoder_log1p:
                values.data = np.log1p(values.data)
            mean = np.asarray(values.mean(axis=0), dtype=np.float64).reshape(-1)
        else:
            mean = (np.log1p(x) if self.config.encoder_log1p else x).mean(axis=0, dtype=np.float64)
        with torch.no_grad():
            self.network.input_offset.copy_(torch.from_numpy(mean.astype(np.float32)))

    def fit(self, x: np.ndarray | sp.spmatrix, options: TrainingOptions | None = None, *, seed: int = 0,
            checkpoint: str | Path | None = None, checkpoint_every: int = 10) -> DSCIGM:
        """Train on ``x`` ``(n_cells, n_genes)`` (non-negative; CSR stays sparse between batches).

        Every random step (cell order, Weibull noise) comes from ``seed``; :attr:`history` gets
        one record per epoch (mean loss and NLL per cell of the steps taken, steps taken and
        skipped, wall seconds). A step whose loss is
        not finite is skipped (its gradients dropped) and counted in :attr:`history`; the
        authors' code instead checks one parameter for NaN after the fact.

        With ``checkpoint`` (a file path), the whole training state (weights, both optimisers,
        the gradients the authors' schedule carries between steps, the cell-order and noise
        generators, the history) is written there every ``checkpoint_every`` epochs, atomically,
        and a fit that finds a checkpoint of the same model, data, settings and seed resumes
        from it: a run killed after epoch 300 of 500 continues at 301 and ends with the same
        numbers as one that was never stopped. The file is removed when the fit ends; one made
        for another model, data or settings is ignored and replaced. :attr:`resumed_at_epoch`
        is the number of epochs the fit found done (0: it started afresh).
        """
        from tqdm.auto import tqdm

        options = options or TrainingOptions()
        self.training_options = options
        x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.config.n_genes:
            raise InputError(f"expected (n_cells, {self.config.n_genes}) input, got shape {x.shape}")
        n_cells = x.shape[0]
        if options.drop_last and n_cells < options.batch_size:
            raise InputError(f"{n_cells} cells are fewer than one batch of {options.batch_size} and the last "
                             "partial batch is dropped: lower batch_size or set drop_last=False")
        if self.config.encoder_center:
            self._set_input_offset(x)
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        step = TrainingStep(self.network, options)
        self.network.train()
        n_batches = n_cells // options.batch_size if options.drop_last else math.ceil(n_cells / options.batch_size)
        every = int(checkpoint_every)
        if every < 1:
            raise InputError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        resumable = _Checkpoint(checkpoint, self, options, seed, x) if checkpoint is not None else None
        first = resumable.restore(step, rng, generator) if resumable is not None else 0
        self.resumed_at_epoch = first
        bar = tqdm(range(first, options.epochs), desc="d-scIGM", unit="epoch", initial=first, total=options.epochs,
                   disable=(not options.progress) if options.progress is not None else None)
        for epoch in bar:
            started = time.perf_counter()
            order = rng.permutation(n_cells)
            total = nll_total = 0.0
            seen = skipped = 0
            for b in range(n_batches):
                rows = np.sort(order[b * options.batch_size:(b + 1) * options.batch_size])
                target = as_float_tensor(x, rows)
                result = step(self._encoder_input(target), target, generator)
                if result is None:
                    skipped += 1
                    continue
                loss, nll = result
                total += loss * len(rows)
                nll_total += nll * len(rows)
                seen += len(rows)
            record = {"epoch": epoch + 1, "loss": total / max(seen, 1), "nll": nll_total / max(seen, 1),
                      "steps": n_batches - skipped, "skipped_steps": skipped,
                      "seconds": time.perf_counter() - started}
            self.history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4g}")
            if resumable is not None and (epoch + 1) % every == 0 and epoch + 1 < options.epochs:
                resumable.save(epoch + 1, step, rng, generator)
        self.network.eval()
        if resumable is not None:
            resumable.remove()
        return self

    # ------------------------------------------------------------------ outputs
    def transform(self, x: np.ndarray | sp.spmatrix, batch_size: int = 1024, *, sample: bool = False,
                  seed: int = 0) -> list[np.ndarray]:
        """Topic weights of every layer: a list of ``(n_cells, K_t)`` arrays.

        ``sample=False``: posterior means (deterministic). ``sample=True``: the authors' outputs,
        each cell's ``theta_t`` an average of ``n_samples`` Weibull draws (given the sampled layer
        above), the noise drawn from ``seed``.
        """
        x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.config.n_genes:
            raise InputError(f"expected (n_cells, {self.config.n_genes}) input, got shape {x.shape}")
        self.network.eval()
        generator = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2**62))) if sample else None
        parts: list[list[np.ndarray]] = [[] for _ in range(self.config.n_layers)]
        for start in range(0, x.shape[0], batch_size):
            block = as_float_tensor(x, np.arange(start, min(start + batch_size, x.shape[0])))
            thetas = self.network.transform(self._encoder_input(block), sample=sample, generator=generator)
            for t, theta in enumerate(thetas):
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
        masks = []
        for m in self._masks:
            coo = m.tocoo()
            masks.append({"shape": list(coo.shape), "rows": coo.row.tolist(), "cols": coo.col.tolist()})
        write_json({
            "model": "dscigm",
            "config": self.config.to_dict(),
            "training": None if self.training_options is None else self.training_options.to_dict(),
            "gene_names": self.gene_names,
            "masks": masks,
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
        stored = meta.get("masks")
        if stored is None:  # written before the hierarchical prior: one first-layer mask or none
            stored = [] if meta.get("mask") is None else [
                {**meta["mask"], "shape": [config.n_genes, len(config.pathways)]}]
        masks = [sp.csr_matrix((np.ones(len(m["rows"]), dtype=bool), (m["rows"], m["cols"])),
                               shape=tuple(m["shape"])) for m in stored]
        model = cls(config, meta["gene_names"], masks or None)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.network.load_state_dict(state)
        model.network.eval()
        model.history = list(meta.get("history", []))
        if meta.get("training") is not None:
            model.training_options = TrainingOptions(**meta["training"])
        return model

    def __repr__(self) -> str:
        kind = (f"{len(self.config.pathways)} pathways" if self.config.masked_layers == 1
                else f"{self.config.masked_layers} masked layers" if self.config.masked_layers else "dense")
        return (f"DSCIGM({self.config.n_genes} genes, topics {list(self.config.topic_sizes)}, "
                f"encoder {kind})")


class _Checkpoint:
    """The training state of one :meth:`DSCIGM.fit`, in one file (``torch.save`` of tensors,
    numbers and JSON text only, read back with ``weights_only=True``)."""

    def __init__(self, path: str | Path, model: DSCIGM, options: TrainingOptions, seed: int,
                 x: np.ndarray | sp.csr_matrix) -> None:
        self.path = Path(path)
        self.model = model
        digest = hashlib.sha256()
        hash_array(digest, x)
        digest.update(json.dumps({"shape": list(x.shape), "config": model.config.to_dict(), "options": options.to_dict(),
                                  "seed": int(seed), "genes": model.gene_names}, sort_keys=True, default=str).encode())
        initial = hashlib.sha256()  # the initial weights (the model's own seed and masks)
        hash_tensors(initial, model.network.state_dict())
        digest.update(initial.digest())
        self.key = digest.hexdigest()

    def restore(self, step: TrainingStep, rng: np.random.Generator, generator: torch.Generator) -> int:
        """Load the state saved for this fit; the number of epochs it had finished (0: none)."""
        state = load_state(self.path, self.key)
        if state is None:
            return 0
        self.model.network.load_state_dict(state["network"])
        for optimizer, saved in zip(step.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        params = dict(self.model.network.named_parameters())
        for name, param in params.items():
            grad = state["grads"].get(name)
            param.grad = None if grad is None else grad.clone()
        rng.bit_generator.state = json.loads(state["rng"])
        generator.set_state(state["generator"])
        self.model.history = json.loads(state["history"])
        return int(state["epoch"])

    def save(self, epoch: int, step: TrainingStep, rng: np.random.Generator, generator: torch.Generator) -> None:
        """Write the state after ``epoch`` finished epochs (atomically: never half a file)."""
        state = {
            "epoch": int(epoch),
            "network": self.model.network.state_dict(),
            "optimizers": [optimizer.state_dict() for optimizer in step.optimizers],
            "grads": {name: p.grad.detach().clone() for name, p in self.model.network.named_parameters()
                      if p.grad is not None},
            "rng": json.dumps(rng.bit_generator.state), "generator": generator.get_state(),
            "history": json.dumps(self.model.history),
        }
        save_state(self.path, self.key, state)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _adam(params: list[torch.nn.Parameter], settings: dict[str, float]) -> torch.optim.Adam:
    """Adam, with the fused kernel where this torch has it on the CPU (2.4 and later).

    The fused kernel makes the same update as the default one (to rounding; the tests compare
    them) and is several times faster on the authors' 57M-weight encoder.
    """
    try:
        return torch.optim.Adam(params, fused=True, **settings)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, **settings)


class TrainingStep:
    """The optimisation step on one minibatch, by ``options.schedule`` (see :class:`TrainingOptions`).

    Holds the optimisers (and, for ``"authors"``, the gradients carried between steps). Calling it
    with ``(encoder input, target, generator)`` returns ``(loss, nll)`` of the first pass as
    floats, or ``None`` when a pass's loss was not finite and its step was skipped; ``noise``
    replaces the generator as in :meth:`DeepWeibullTopicModel.forward` (equivalence checks).
    """

    def __init__(self, network: DeepWeibullTopicModel, options: TrainingOptions) -> None:
        self.network = network
        self.options = options
        self.encoder, self.decoder = network.parameter_groups()
        self.all = [*self.encoder, *self.decoder]
        adam = {"lr": options.lr, "weight_decay": options.weight_decay}
        if options.schedule == "joint":
            self.optimizers = [_adam(self.all, adam)]
        else:
            self.optimizers = [_adam(self.encoder, adam), _adam(self.decoder, adam)]

    def _zero(self, params: list[torch.nn.Parameter]) -> None:
        for p in params:
            p.grad = None

    def __call__(self, x_encoder: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None,
                 noise: Noise | None = None) -> tuple[float, float] | None:
        schedule, clip = self.options.schedule, self.options.clip_norm
        out = self.network(x_encoder, target, sample=True, generator=generator, noise=noise)
        first = (float(out["loss"].detach()), float(out["nll"].detach()))
        if schedule == "joint":
            self._zero(self.all)
            if not torch.isfinite(out["loss"]):
                return None
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(self.all, clip)
            self.optimizers[0].step()
            return first
        encoder_opt, decoder_opt = self.optimizers
        if not torch.isfinite(out["loss"]):
            self._zero(self.all)
            return None
        if schedule == "authors":
            # encoder step: the gradient of every parameter accumulates (the previous decoder
            # pass left its encoder gradient); clip over all, step and zero the encoder only
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(self.all, clip)
            encoder_opt.step()
            self._zero(self.encoder)
        else:
            self._zero(self.all)
            out["loss"].backward(inputs=self.encoder)
            torch.nn.utils.clip_grad_norm_(self.encoder, clip)
            encoder_opt.step()
            self._zero(self.encoder)
        del out
        again = self.network(x_encoder, target, sample=True, generator=generator, noise=noise)
        if not torch.isfinite(again["loss"]):
            self._zero(self.all)
            return None
        if schedule == "authors":
            again["loss"].backward()
        else:
            again["loss"].backward(inputs=self.decoder)
        torch.nn.utils.clip_grad_norm_(self.decoder, clip)
        decoder_opt.step()
        self._zero(self.decoder)
        return first
