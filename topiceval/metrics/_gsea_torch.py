"""The native GSEA null walked with torch (``device="cuda"``), fed the random places of the CPU.

Imported only when a torch device is asked for: ``import topiceval`` never imports torch. The
walk is that of :func:`topiceval.metrics._gsea_numba.null_es` written as tensor operations over
``(permutations, sets of one size, hits, topics)``; the statistics stay on the CPU (the compiled
kernels), so a GPU changes the null ES by float32 rounding at most (its cumulative sums may add in
another order) and nothing else.
"""

from __future__ import annotations

import numpy as np

#: Elements of one work tensor (float32): about 256 MB.
_WORK_ELEMENTS = 1 << 26


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class NullWalker:
    """Null ES of the sets (sorted by size, CSR ``set_ptr`` / ``set_size``) on a torch device."""

    def __init__(self, set_ptr: np.ndarray, set_size: np.ndarray, n_genes: int, device: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.set_ptr = np.asarray(set_ptr, dtype=np.int64)
        self.n_genes = int(n_genes)
        sizes = np.asarray(set_size, dtype=np.int64)
        bounds = np.flatnonzero(np.diff(sizes)) + 1
        self.groups = [(int(sizes[a]), int(a), int(b))
                       for a, b in zip(np.r_[0, bounds], np.r_[bounds, sizes.size], strict=True)]
        self.n_sets = sizes.size

    def null_es(self, weights_t: np.ndarray, places: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(pc, n_sets, kb)`` float32 null ES (the layout of the CPU kernel) and the zero-weight
        samples per relabelling.

        ``weights_t``: ``(N, kb)`` float32 weights in ranked order; ``places``: ``(pc, nnz)``
        sorted random places (:func:`topiceval.metrics._gsea_numba.random_places`).
        """
        torch = self.torch
        kb = weights_t.shape[1]
        pc = places.shape[0]
        weights = torch.from_numpy(np.ascontiguousarray(weights_t, dtype=np.float32)).to(self.device)
        rows = torch.from_numpy(np.ascontiguousarray(places)).to(self.device)
        out = torch.empty((pc, self.n_sets, kb), dtype=torch.float32, device=self.device)
        flat_count = torch.zeros(pc, dtype=torch.int64, device=self.device)
        for m, a, b in self.groups:
            g = b - a
            lo, hi = int(self.set_ptr[a]), int(self.set_ptr[b])
            step = float(np.float32(1.0 / (self.n_genes - m)))
            chunk = max(1, _WORK_ELEMENTS // max(g * m * kb, 1))
            for p0 in range(0, pc, chunk):
                p1 = min(pc, p0 + chunk)
                pos = rows[p0:p1, lo:hi].reshape(p1 - p0, g, m).long()
                value, flat = self._walk(weights, pos, m, step)
                out[p0:p1, a:b] = value
                flat_count[p0:p1] += flat.sum(dim=(1, 2))
        return out.cpu().numpy(), flat_count.cpu().numpy()

    def _walk(self, weights, pos, m: int, step: float):  # noqa: ANN001, ANN202
        torch = self.torch
        steps = torch.arange(m, device=self.device)
        cum = torch.cumsum(weights[pos], dim=2)  # (p, g, m, kb), float32 in hit order
        total = cum[:, :, -1, :]
        flat = total == 0
        scale = torch.where(flat, torch.zeros_like(total), 1.0 / torch.where(flat, torch.ones_like(total), total))
        x = cum * scale[:, :, None, :]
        misses = ((pos - steps).to(torch.float32) * torch.tensor(step, dtype=torch.float32,
                                                                  device=self.device))[..., None]
        top = (x - misses).amax(dim=2)
        before = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, :-1]], dim=2)
        bottom = (before - misses).amin(dim=2)
        value = torch.where(top > -bottom, top, bottom)
        if bool(flat.any()):
            # equal hit weights (the zero-weight convention), float64 as the CPU kernel
            p64 = pos.to(torch.float64)
            s64 = steps.to(torch.float64)
            tops = (s64 + 1) / m - (p64 - s64) / (self.n_genes - m)
            high, low = tops.amax(dim=2), (tops - 1.0 / m).amin(dim=2)
            unit = torch.where(high > -low, high, low).to(torch.float32)
            value = torch.where(flat, unit[..., None], value)
        return value, flat
