"""Training loop, minibatch streaming, threads and device for scE2TM.

The loop follows the authors' ``runners/Runner.py``: RMSprop (learning rate 1e-3, torch defaults
otherwise) over every parameter, StepLR(125, 0.5) stepped once per epoch, the cells shuffled every
epoch into batches of 512 (2048 above 10,000 cells), one neighbour per cell and view drawn afresh
at every step. A last batch of a single cell (which BatchNorm cannot train on, and on which the
reference stops with an error) is merged into the batch before it.

Sparse expression stays sparse: each batch (and its neighbours) is densified on its own.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .distill import NeighbourSets
from .model import LOSS_TERMS, SCE2TMConfig, SCE2TMNet

__all__ = ["ExpressionSource", "TrainingState", "train_net", "default_threads", "torch_threads", "resolve_device", "batches", "pack_rows"]


def default_threads() -> int:
    """CPU threads for torch during training: 1 on machines with at most 2 usable CPUs, else
    ``min(4, cpus // 2)``.

    The per-step work of scE2TM is a few 512 x 5000 matrix products and hundreds of small
    Sinkhorn matrix-vector products per step. On a 2-core machine, two intra-op threads gain at
    most ~1.5x on the matrix products when the machine is idle, but as soon as another process
    takes a core every small operation waits for a descheduled thread: measured up to 20x slower
    epochs on a shared 2-core machine (torch's default is one thread per core). Usable CPUs are the
    affinity mask, capped by a cgroup v2 CPU quota when one is set. Pass ``n_threads`` to choose.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            available = min(available, max(1, math.floor(int(quota) / int(period))))
    if available <= 2:
        return 1
    return min(4, available // 2)


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[int]:
    """Set ``torch.set_num_threads`` for the block and restore the previous value afterwards."""
    previous = torch.get_num_threads()
    n = default_threads() if n_threads is None else int(n_threads)
    if n < 1:
        raise ValueError(f"n_threads must be at least 1, got {n_threads}")
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ExpressionSource:
    """Rows of a cells x genes matrix as float32 tensors, one batch at a time.

    A dense matrix is copied to the device once; a sparse one stays a float32 CSR matrix in host
    memory and only the requested rows are densified.
    """

    def __init__(self, matrix: np.ndarray | sp.spmatrix, device: torch.device) -> None:
        self.device = device
        self.shape = matrix.shape
        if sp.issparse(matrix):
            self.sparse = sp.csr_matrix(matrix, dtype=np.float32)
            self.dense = None
        else:
            self.sparse = None
            self.dense = torch.as_tensor(np.ascontiguousarray(matrix, dtype=np.float32), device=device)

    def rows(self, index: np.ndarray) -> torch.Tensor:
        """``(len(index), V)`` float32 tensor on the device."""
        if self.dense is not None:
            return self.dense[torch.as_tensor(index, device=self.device)]
        block = torch.from_numpy(self.sparse[index].toarray())
        return block.to(self.device, non_blocking=True)


def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A shuffled split of ``range(n)`` into batches; a last batch of one cell joins the one before."""
    order = rng.permutation(n)
    parts = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(parts) > 1 and parts[-1].size == 1:
        parts[-2] = np.concatenate([parts[-2], parts[-1]])
        parts.pop()
    return parts


def pack_rows(cells: np.ndarray, neighbours: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cells of a step and where each neighbour sits among them.

    Parameters
    ----------
    cells
        ``(B,)`` distinct anchor cells.
    neighbours
        ``(B,)`` one drawn neighbour per anchor (may repeat, may be anchors).
    slot
        Scratch array of ``-1`` of length ``n_cells``; left all ``-1`` again on return.

    Returns
    -------
    rows
        ``(U,)`` cells to read: ``cells`` first, then the neighbours that are not anchors.
    neighbour_rows
        ``(B,)`` position in ``rows`` of each anchor's neighbour.
    """
    slot[cells] = np.arange(cells.size)
    outside = np.unique(neighbours[slot[neighbours] < 0])
    slot[outside] = cells.size + np.arange(outside.size)
    neighbour_rows = slot[neighbours]
    slot[cells] = -1
    slot[outside] = -1
    return np.concatenate([cells, outside]), neighbour_rows


@dataclass
class TrainingState:
    """What a training run records: per-epoch means of the loss terms and timings."""

    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in ("epoch", *LOSS_TERMS, "sinkhorn_iter", "lr", "seconds", "cpu_seconds")})
    n_threads: int = 1
    device: str = "cpu"

    def append(self, row: dict[str, float]) -> None:
        """Add one epoch's row."""
        for key, values in self.history.items():
            values.append(float(row[key]))


def train_net(
    net: SCE2TMNet,
    expression: ExpressionSource,
    external: torch.Tensor,
    neighbours_expression: NeighbourSets,
    neighbours_external: NeighbourSets,
    config: SCE2TMConfig,
    rng: np.random.Generator,
    state: TrainingState,
    progress: bool = True,
) -> None:
    """Train ``net`` in place for ``config.epochs`` epochs (the caller seeds torch).

    Parameters
    ----------
    net
        The network, on ``expression.device``.
    expression
        Model input, ``(n, V)``.
    external
        External cell embedding ``(n, d)`` on the same device.
    neighbours_expression, neighbours_external
        Neighbour sets of the two views.
    config
        Hyperparameters (epochs, batch size, learning rate, schedule).
    rng
        Generator for shuffling and neighbour draws.
    state
        Receives one history row per epoch.
    progress
        Show a tqdm bar over epochs with the loss terms.
    """
    from tqdm.auto import tqdm

    n = expression.shape[0]
    batch_size = config.resolved_batch_size(n)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    device = expression.device
    slot = np.full(n, -1, dtype=np.int64)
    bar = tqdm(range(1, config.epochs + 1), desc="scE2TM", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        start, cpu_start = time.perf_counter(), time.process_time()
        net.train()
        sums = torch.zeros(len(LOSS_TERMS), dtype=torch.float64, device=device)
        iters = 0
        lr = optimizer.param_groups[0]["lr"]
        for cells in batches(n, batch_size, rng):
            nbr_x = neighbours_expression.sample(cells, rng)
            nbr_v = neighbours_external.sample(cells, rng)
            rows, nbr_rows = pack_rows(cells, nbr_x, slot)
            x_all = expression.rows(rows)
            v = external[torch.as_tensor(cells, device=device)]
            v_nbr = external[torch.as_tensor(nbr_v, device=device)]
            terms, n_iter = net.packed_losses(x_all, cells.size, torch.as_tensor(nbr_rows, device=device), v, v_nbr)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            with torch.no_grad():
                sums += torch.stack([terms[k].detach() for k in LOSS_TERMS]).double() * cells.size
            iters += n_iter * cells.size
        scheduler.step()
        means = (sums / n).cpu().numpy()
        row: dict[str, Any] = dict(zip(LOSS_TERMS, means, strict=True))
        if not np.all(np.isfinite(means)):
            bad = [k for k, v in row.items() if not np.isfinite(v)]
            raise FloatingPointError(f"scE2TM loss term(s) {', '.join(bad)} became non-finite at epoch {epoch}")
        row.update(epoch=epoch, sinkhorn_iter=iters / n, lr=lr, seconds=time.perf_counter() - start,
                   cpu_seconds=time.process_time() - cpu_start)
        state.append(row)
        if progress:
            bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "recon", "ecr", "contrast")}, refresh=False)
    bar.close()
