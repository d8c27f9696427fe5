"""Helpers shared by the adapters: model input, option parsing, lazy imports, seeding, threads.

Nothing here imports torch or a model library at import time.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib
import logging
import os
import random
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from topiceval._utils import preview
from topiceval.errors import InputError, TopicEvalError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "COUNTS_LAYER",
    "MissingExtraError",
    "ModelInput",
    "check_positive_int",
    "holds_counts",
    "resolve_progress",
    "default_threads",
    "gene_names",
    "global_seed",
    "import_extra",
    "model_input",
    "normalize_rows",
    "parse_options",
    "quiet_loggers",
    "retain_freed_memory",
    "torch_threads",
    "trim_heap",
    "warn_if_not_counts",
]

#: The layer :func:`topiceval.datasets.preprocess` keeps the raw counts in.
COUNTS_LAYER = "counts"


class MissingExtraError(TopicEvalError, ImportError):
    """A model library is not installed; the message names the extra that provides it."""


def import_extra(module: str, extra: str, model: str) -> Any:
    """Import ``module``; if it (or one of its own imports) is missing, name the extra.

    Parameters
    ----------
    module
        Module to import (``"scETM"``, ``"scvi"``, ``"torch"``).
    extra
        The ``topiceval`` optional-dependency extra that installs it.
    model
        Model name, for the message.

    Raises
    ------
    MissingExtraError
        ``model 'scetm' needs scETM (No module named 'scETM'): pip install "topiceval[scetm]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"model {model!r} needs {module} ({exc}): pip install \"topiceval[{extra}]\""
        ) from exc


@dataclass
class ModelInput:
    """The matrix a model trains on.

    Attributes
    ----------
    matrix
        ``(n_cells, n_genes)`` CSR (float32 or float64) or dense array.
    source
        Where it came from: ``"X"`` or ``"layers['counts']"``.
    layer
        The layer name, or ``None`` for ``X``.
    integer
        Whether every value is a whole number (raw counts).
    """

    matrix: sp.csr_matrix | np.ndarray
    source: str
    layer: str | None
    integer: bool


def model_input(
    adata: AnnData,
    layer: str | None,
    *,
    default: str | None,
    model: str,
    needs: str = "raw counts",
    dtype: Any = np.float32,
) -> ModelInput:
    """Pick the model's input matrix from an AnnData and check it.

    Parameters
    ----------
    adata
        Cells x genes.
    layer
        The layer the user asked for (``"X"`` or ``None`` + ``default=None`` mean ``adata.X``).
    default
        The model's natural input when ``layer`` is ``None``: a layer name (``"counts"``, what
        :func:`topiceval.datasets.preprocess` writes) or ``None`` for ``X``.
    model, needs
        For messages (``"raw counts"``, ``"non-negative values"``).
    dtype
        Float type of the returned matrix.

    Returns
    -------
    ModelInput

    Raises
    ------
    InputError
        No cells or genes, a missing layer, NaN / infinite or negative values.
    """
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise InputError(f"model {model!r} trains on an AnnData, got {type(adata).__name__}")
    if adata.n_obs < 2 or adata.n_vars < 2:
        raise InputError(f"model {model!r} needs at least 2 cells and 2 genes, got {adata.shape}")
    name = default if layer is None else (None if layer == "X" else layer)
    if layer is None and name == COUNTS_LAYER and name not in adata.layers and holds_counts(adata.X):
        name = None  # the most common file: raw counts in X and no layers
    if name is None:
        matrix, source = adata.X, "X"
    else:
        if name not in adata.layers:
            hint = (
                " and X does not hold counts (non-integer or negative values); name the layer that "
                "holds them (--layer NAME; layer=NAME in Python), preprocess raw counts in X "
                "(--preprocess N_GENES; topiceval.datasets.preprocess), or train on X as it is "
                "(--layer X)"
                if name == COUNTS_LAYER
                else ""
            )
            raise InputError(
                f"model {model!r} trains on {needs} from layers[{name!r}], which this AnnData does "
                f"not have{hint}; its layers: {preview(adata.layers.keys()) or 'none'}"
            )
        matrix, source = adata.layers[name], f"layers[{name!r}]"
    if matrix is None:
        raise InputError(f"model {model!r}: adata.X is empty")
    if sp.issparse(matrix):
        matrix = sp.csr_matrix(matrix, dtype=dtype)
        matrix.sum_duplicates()
        values = matrix.data
    else:
        matrix = np.asarray(matrix, dtype=dtype)
        values = matrix.reshape(-1)
    if matrix.shape != adata.shape:
        raise InputError(f"{source} has shape {matrix.shape} but the AnnData has shape {adata.shape}")
    finite = np.isfinite(values)
    if not finite.all():
        raise InputError(
            f"model {model!r}: {source} holds {int((~finite).sum())} NaN or infinite value(s)"
        )
    if values.size and values.min() < 0:
        raise InputError(
            f"model {model!r} trains on {needs} but {source} holds {int((values < 0).sum())} "
            f"negative value(s) (minimum {float(values.min())!r}); is it scaled or centred data?"
        )
    integer = bool(np.all(values == np.floor(values)))
    empty = np.flatnonzero(np.asarray(matrix.sum(axis=1)).reshape(-1) == 0)
    if empty.size:
        raise InputError(
            f"model {model!r}: {empty.size} cell(s) have no counts in {source} (e.g. "
            f"{preview(adata.obs_names[empty[:5]])}); drop empty cells first "
            "(topiceval.datasets.preprocess does)"
        )
    return ModelInput(matrix, source, name, integer)


def holds_counts(matrix: Any) -> bool:
    """Whether ``matrix`` (dense or sparse) looks like raw counts: finite, non-negative whole
    numbers, not all zero or one."""
    if matrix is None:
        return False
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    if values.size == 0 or not np.issubdtype(values.dtype, np.number):
        return False
    if not np.all(np.isfinite(values)) or values.min() < 0:
        return False
    return bool(np.all(values == np.floor(values)) and values.max() > 1)


def resolve_progress(options: Mapping[str, Any], given: Mapping[str, Any], progress: bool | None,
                     key: str = "progress") -> Any:
    """The progress setting: the model option when the user set it (``--set progress=...``),
    else the common ``TrainParams.progress`` when not ``None``, else the option's default."""
    if key in given or progress is None:
        return options[key]
    return bool(progress)


def warn_if_not_counts(data: ModelInput, model: str) -> None:
    """Warn when a count model is given non-integer values."""
    if not data.integer:
        warnings.warn(
            f"model {model!r} models raw counts but {data.source} holds non-integer values",
            stacklevel=3,
        )


def _coerce(key: str, value: Any, default: Any, model: str) -> Any:
    """Convert a command-line string (``--set KEY=VALUE``) to the type of the default."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise InputError(f"model {model!r}: option {key}={value!r} is not a valid {type(default).__name__}") from None
    if default is None:
        lowered = text.lower()
        if lowered in ("none", "null", ""):
            return None
        if lowered in ("true", "false"):
            return lowered == "true"
    return value


def parse_options(options: Mapping[str, Any], defaults: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Model options merged over their defaults; unknown names are an error.

    String values (from the command line) are converted to the default's type.
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise InputError(
            f"model {model!r} has no option(s) {', '.join(unknown)}; its options: "
            f"{', '.join(sorted(defaults))}"
        )
    merged = dict(defaults)
    for key, value in options.items():
        merged[key] = _coerce(key, value, defaults[key], model)
    return merged


def check_positive_int(value: Any, what: str, minimum: int = 1) -> int:
    """An integer ``>= minimum`` or :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@contextlib.contextmanager
def global_seed(seed: int, torch: bool = True) -> Iterator[None]:
    """Seed the global RNGs (``random``, ``numpy.random``, torch CPU) and restore them afterwards.

    For libraries that draw from global generators (scETM, scvi-tools, ``torch.nn`` weight
    initialisation): the call is reproducible and the caller's RNG state is unchanged.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    if torch:
        import torch as _torch

        with _torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            _torch.manual_seed(seed)
            try:
                yield
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
    else:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def default_threads() -> int:
    """Torch threads used when the options do not say: 1.

    Small models on few cells are much faster single-threaded (thread start-up dominates; on 2
    cores shared with other work, 2+ threads were measured many times slower); pass
    ``threads=N`` for large data.
    """
    return 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``torch.set_num_threads(n)`` and restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of the named loggers for the duration of the block."""
    loggers = [logging.getLogger(name) for name in names]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, previous, strict=True):
            logger.setLevel(old)


def gene_names(adata: AnnData) -> np.ndarray:
    """``adata.var_names`` as an array of ``str``."""
    return np.asarray([str(name) for name in adata.var_names], dtype=object)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1 (``float64``); an all-zero row becomes uniform.

    Parameters
    ----------
    matrix
        ``(n_rows, n_columns)``, non-negative.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    sums = matrix.sum(axis=1, keepdims=True)
    out = np.divide(matrix, sums, out=np.full_like(matrix, 1.0 / matrix.shape[1]), where=sums > 0)
    return out


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    """The C library when it is glibc, else ``None`` (macOS, musl, Windows): its heap functions
    (``malloc_trim``, ``mallopt``) are glibc's; musl's ``mallopt`` does nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc's own symbol
    except (OSError, AttributeError):
        return None
    return libc


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or ``None`` where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return None
    function = libc.malloc_trim
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    return function


def trim_heap() -> bool:
    """Give the memory the C heap holds free back to the system (glibc ``malloc_trim(0)``).

    A long training loop that allocates and frees the same large tensors every step can leave
    glibc's heap holding ever more freed memory: scETM's 12,000 single-batch steps on 1,556
    cells grew a process by some 0.3-2 MB a step (18 GB after 7,500 steps in a leaderboard
    worker) with nothing alive in it. Trimming every hundred steps keeps it flat, costs no
    measurable time and changes no number. Returns whether a trim was made (``False`` where
    the C library has no ``malloc_trim``).
    """
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Freed memory the heap keeps for the next allocations (glibc's default: 128 KiB, raised to
#: twice the largest freed mapped chunk, at most 64 MiB), and the size from which an allocation
#: gets a mapping of its own, faulted in anew each time (glibc's default: 128 KiB, rising to at
#: most 32 MiB): d-scIGM's first-layer gradient alone is 185 MB (5,000 x 9,275 float32).
RETAINED_BYTES, MMAP_THRESHOLD_BYTES = 1 << 30, 512 << 20
#: The environment variables through which a user sets glibc's choice instead.
_MALLOC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


@functools.lru_cache(maxsize=1)
def retain_freed_memory() -> bool:
    """Let the C heap keep freed memory for the next training step (glibc ``mallopt``).

    A training step on the CPU frees and reallocates the same tensors every step: d-scIGM's
    dense encoder has 61M weights on 5,000 genes, so each step's gradients alone are some
    250 MB. By default glibc gives a freed allocation of over 32 MiB, and any freed memory over
    64 MiB at the top of its heap, back to the system, and the next step faults every page of it
    in again (minor page faults, zero-filled by the kernel): a third of the CPU time of a
    d-scIGM fit on pollen went to the kernel. With allocations up to
    :data:`MMAP_THRESHOLD_BYTES` inside the heap and up to :data:`RETAINED_BYTES` kept free
    there, an epoch took 4.0 s instead of 5.6 s (``benchmarks/bench_heap.py pollen``, 8.7M page
    faults down to 0.6M, with two other fits on the 2 cores). The process then holds up to 1 GiB
    more memory between steps; :func:`trim_heap` gives it back.

    Process-wide and once: the leaderboard calls it in the process that trains a cell, and
    ``topiceval train`` before it trains. It changes no number. It does nothing where the C
    library is not glibc, or where the user chose for glibc through ``MALLOC_TRIM_THRESHOLD_``,
    ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or a ``glibc.malloc`` entry of
    ``GLIBC_TUNABLES`` (``MALLOC_TRIM_THRESHOLD_=131072`` keeps glibc's default trimming).
    Returns whether the heap was set so.
    """
    if any(name in os.environ for name in _MALLOC_VARIABLES) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt takes an int: both values are below 2**31
    return bool(mallopt(_M_TRIM_THRESHOLD, RETAINED_BYTES)) and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
