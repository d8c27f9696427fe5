"""Gene-set collections (installed as ``topiceval.gene_sets``).

* :func:`read_gmt` and :class:`GeneSets`: a GMT file as a sparse sets x genes membership matrix.
* :func:`load`: one entry point for a GMT path, a shipped collection name, a ``{name: genes}``
  mapping or an existing :class:`GeneSets`.
* :data:`SHIPPED`: the small collections shipped with the package (Hallmark, Reactome, mouse
  Hallmark); licences and citations in ``gene_sets/README.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from topiceval._utils import PathLike, as_path
from topiceval.errors import InputError

from .gmt import CASE_RULES, Coverage, GeneSets, normalize_symbols, read_gmt
from .shipped import SHIPPED, ShippedCollection, shipped_path

__all__ = [
    "CASE_RULES",
    "Coverage",
    "GeneSets",
    "SHIPPED",
    "ShippedCollection",
    "load",
    "normalize_symbols",
    "read_gmt",
    "shipped_path",
]

GeneSetsLike = GeneSets | Mapping[str, Iterable[str]] | PathLike


def load(
    spec: GeneSetsLike,
    *,
    case: str = "upper",
    min_size: int | None = None,
    max_size: int | None = None,
) -> GeneSets:
    """Load a gene-set collection.

    Parameters
    ----------
    spec
        A :class:`GeneSets` (returned as is, filtered if sizes are given), a mapping
        ``{set name: genes}``, the name of a shipped collection (``"hallmark"``, ``"reactome"``,
        ``"mouse_hallmark"``) or the path of a GMT file (plain or gzip).
    case
        Case rule for symbols, ``"upper"`` (default) or ``"exact"``; see :mod:`.gmt`.
    min_size, max_size
        Keep only sets of this many genes (inclusive); recorded in :meth:`GeneSets.config`.
    """
    if isinstance(spec, GeneSets):
        gene_sets = spec
    elif isinstance(spec, Mapping):
        gene_sets = GeneSets.from_dict(spec, case=case)  # type: ignore[arg-type]
    elif isinstance(spec, str) and spec in SHIPPED:
        gene_sets = read_gmt(SHIPPED[spec].path, case=case, source=spec)  # type: ignore[arg-type]
    else:
        path = as_path(spec)
        if not path.exists():
            raise InputError(
                f"gene sets {str(spec)!r}: no such file, and not a shipped collection "
                f"(shipped: {', '.join(SHIPPED)})"
            )
        gene_sets = read_gmt(path, case=case)  # type: ignore[arg-type]
    if min_size is not None or max_size is not None:
        gene_sets = gene_sets.filter(min_size=min_size, max_size=max_size)
    return gene_sets
