"""Gene-pathway priors of d-scIGM's masked encoder: which unit feeds which.

No torch here; every mask is a sparse boolean matrix. Two priors:

* :func:`pathway_mask`: one gene -> pathway layer from a flat
  :class:`~topiceval.gene_sets.GeneSets` collection (the shipped ``"reactome"`` by default);
* :func:`read_hierarchical_prior`: the authors' own prior (their repository's ``datasets/``
  folder, given by the user): input genes -> 9275 gene nodes (same symbol or a STRING link) ->
  five levels of the Reactome hierarchy (1387, 1066, 447, 147, 26 pathways), every encoder layer
  masked (:meth:`HierarchicalPrior.masks`).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from topiceval.errors import InputError

__all__ = ["HierarchicalPrior", "PathwayMask", "pathway_mask", "read_hierarchical_prior", "read_string_links"]


@dataclass
class PathwayMask:
    """Connections of the first encoder layer.

    Attributes
    ----------
    mask
        ``(n_genes, n_pathways)`` CSR of booleans: gene ``g`` feeds pathway unit ``p`` iff
        ``mask[g, p]``.
    pathways
        The ``n_pathways`` set names, in column order.
    source
        Where the sets came from (collection name / file), for the model's settings.
    n_genes_covered
        Model genes that belong to at least one kept pathway.
    """

    mask: sp.csr_matrix
    pathways: list[str]
    source: str | None
    n_genes_covered: int

    @property
    def n_pathways(self) -> int:
        """Number of pathway units."""
        return len(self.pathways)


def pathway_mask(
    gene_names: Sequence[str],
    gene_sets: object = "reactome",
    *,
    min_genes: int = 5,
    max_genes: int | None = None,
) -> PathwayMask:
    """Gene -> pathway connections for the model's genes.

    Parameters
    ----------
    gene_names
        The model's ``n_genes`` genes, in input order.
    gene_sets
        Anything :func:`topiceval.gene_sets.load` accepts (default: the shipped Reactome
        collection, C2:CP:Reactome v2022.1, as the authors used).
    min_genes, max_genes
        Keep pathways with at least ``min_genes`` (and at most ``max_genes``) of the model's genes.

    Returns
    -------
    PathwayMask

    Raises
    ------
    InputError
        No pathway keeps ``min_genes`` model genes (species or identifier mismatch, too few genes).
    """
    from topiceval.gene_sets import load

    collection = load(gene_sets)
    names = list(gene_names)
    index = collection.gene_index(names)
    known = np.flatnonzero(index >= 0)
    membership = collection.membership.tocsc()[:, index[known]].tocsr()  # sets x known genes
    sizes = np.asarray(membership.sum(axis=1)).reshape(-1)
    keep = sizes >= min_genes
    if max_genes is not None:
        keep &= sizes <= max_genes
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise InputError(
            f"no gene set of {collection.source or 'the collection'} holds {min_genes} or more of the "
            f"{len(names)} model genes ({known.size} of them appear in it at all): wrong species or "
            "identifiers, or lower min_genes"
        )
    kept = membership[rows].astype(bool)  # pathways x known genes
    # scatter the known genes back to their positions among all model genes
    mask = sp.csr_matrix(
        (np.ones(kept.nnz, dtype=bool), (known[kept.indices], np.repeat(np.arange(rows.size), np.diff(kept.indptr)))),
        shape=(len(names), rows.size),
    )
    covered = int((np.asarray(mask.sum(axis=1)).reshape(-1) > 0).sum())
    return PathwayMask(mask=mask, pathways=[str(collection.names[i]) for i in rows],
                       source=collection.source, n_genes_covered=covered)


# ----------------------------------------------------------------------------- the authors' hierarchy
#: File names of the authors' prior-knowledge folder (their repository's ``datasets/``).
HIERARCHY_LEVELS_FILE = "hierarchical_prior_knowledge_layer.pkl"
HIERARCHY_EDGES_FILE = "hierarchical_prior_knowledge_edge.pkl"
STRING_LINKS_FILE = "9606.protein.links.v11.5_700.txt"


class _PickledArray:
    """Inert stand-in for a pickled numpy array: keeps the state, runs no numpy code.

    The authors' edge file (a Python 2 pickle) stores some child lists as 1-d object arrays of
    strings; only that form is accepted (see :func:`_safe_unpickle`).
    """

    def __init__(self, *args: object) -> None:
        self.items: list[str] | None = None

    def __setstate__(self, state: object) -> None:
        # ndarray.__reduce__ state: (version, shape, dtype, is_fortran, data)
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("unexpected numpy array state")
        _, shape, dtype, _, data = state
        if not (isinstance(dtype, _PickledDType) and dtype.code in ("O8", "O4")):
            raise pickle.UnpicklingError("only object arrays of strings are accepted")
        if not (isinstance(shape, tuple) and len(shape) == 1 and isinstance(data, list)
                and len(data) == shape[0] and all(isinstance(v, str) for v in data)):
            raise pickle.UnpicklingError("only 1-d object arrays of strings are accepted")
        self.items = list(data)


class _PickledDType:
    """Inert stand-in for a pickled numpy dtype (only its type code is kept)."""

    def __init__(self, code: object = None, *args: object) -> None:
        self.code = code

    def __setstate__(self, state: object) -> None:
        pass


def _reconstruct(*args: object) -> _PickledArray:
    return _PickledArray()


def _latin1(text: object, encoding: object = "latin1") -> bytes:
    """``_codecs.encode`` as pickles of protocol < 3 use it for bytes: only str to latin-1 bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing to load _codecs.encode with these arguments")
    return text.encode("latin1")


#: The only globals a prior pickle may name, each mapped to an inert stand-in above.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _PickledArray,
    ("numpy", "dtype"): _PickledDType,
    ("_codecs", "encode"): _latin1,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only builtin containers, strings and numbers (and 1-d string arrays as lists)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _plain(value: object) -> object:
    """The loaded object with every array stand-in replaced by its list of strings."""
    if isinstance(value, _PickledArray):
        if value.items is None:
            raise pickle.UnpicklingError("a numpy array without data")
        return value.items
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise pickle.UnpicklingError(f"unexpected object of type {type(value).__name__}")


def _safe_unpickle(path: Path) -> object:
    """Read a pickle of builtin containers, strings and numbers without running code from it.

    The unpickler resolves no global except numpy's array reconstruction, mapped to inert
    stand-ins that accept only 1-d object arrays of strings (as the authors' edge file holds);
    any other global (a class, a function) is refused.
    """
    try:
        with open(path, "rb") as fh:
            return _plain(_RestrictedUnpickler(fh, encoding="utf-8").load())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a prior-knowledge pickle of plain lists and strings ({exc})") from exc


@dataclass
class HierarchicalPrior:
    """The authors' prior knowledge: gene nodes under a five-level Reactome hierarchy.

    Attributes
    ----------
    levels
        Node names per level, the top first: ``levels[0]`` the 26 top pathways, ...,
        ``levels[-1]`` the gene nodes (9275 gene symbols in the authors' files).
    children
        ``children[i][parent]``: the names of level ``i + 1`` under ``parent`` of level ``i``
        (``len(levels) - 1`` dictionaries).
    links
        Gene-gene links (STRING, as unordered pairs of symbols) that connect an input gene to the
        gene nodes of its neighbours; empty when none were read.
    source
        The folder read.
    """

    levels: list[list[str]]
    children: list[dict[str, frozenset[str]]]
    links: frozenset[frozenset[str]]
    source: str | None = None

    @property
    def sizes(self) -> tuple[int, ...]:
        """Encoder widths, bottom first: gene nodes, then each pathway level up to the top."""
        return tuple(len(level) for level in reversed(self.levels))

    def masks(self, gene_names: Sequence[str]) -> list[sp.csr_matrix]:
        """Boolean ``(n_in, n_out)`` connection matrices of every encoder layer, bottom first.

        Layer 0: input gene ``g`` feeds gene node ``j`` iff they are the same symbol or a
        :attr:`links` pair; layer ``t > 0``: node ``c`` of the level below feeds ``p`` iff ``c``
        is among ``p``'s children.
        """
        genes = [str(g) for g in gene_names]
        nodes = self.levels[-1]
        node_index: dict[str, list[int]] = {}
        for j, name in enumerate(nodes):
            node_index.setdefault(name, []).append(j)
        neighbours: dict[str, set[str]] = {}
        for pair in self.links:
            a, b = (tuple(pair) * 2)[:2]
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
        rows, cols = [], []
        for g, gene in enumerate(genes):
            for partner in {gene} | neighbours.get(gene, set()):
                for j in node_index.get(partner, ()):
                    rows.append(g)
                    cols.append(j)
        out = [_bool_csr(rows, cols, (len(genes), len(nodes)))]
        for depth in range(len(self.levels) - 1, 0, -1):
            below, above = self.levels[depth], self.levels[depth - 1]
            index = {name: i for i, name in enumerate(below)}
            rows, cols = [], []
            for p, parent in enumerate(above):
                for child in self.children[depth - 1].get(parent, ()):
                    if child in index:
                        rows.append(index[child])
                        cols.append(p)
            out.append(_bool_csr(rows, cols, (len(below), len(above))))
        return out


def _bool_csr(rows: list[int], cols: list[int], shape: tuple[int, int]) -> sp.csr_matrix:
    mask = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=shape)
    mask.sum_duplicates()
    mask.data[:] = True
    return mask


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} is not a list of names")
    return value


def read_string_links(path: str | Path) -> frozenset[frozenset[str]]:
    """Gene-gene links from a tab-separated file of symbol pairs (the authors' STRING file).

    Each line's first two fields are two gene symbols; a link has no direction. A header line
    adds a harmless pair of non-gene names.
    """
    pairs: set[frozenset[str]] = set()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 1 and not fields[0].strip():
                continue
            if len(fields) < 2:
                fields = line.split()
            if len(fields) < 2:
                raise InputError(f"{path}:{number}: expected two tab-separated gene symbols")
            pairs.add(frozenset((fields[0].strip(), fields[1].strip())))
    return frozenset(pairs)


def read_hierarchical_prior(folder: str | Path, *, string_links: bool = True) -> HierarchicalPrior:
    """Read the authors' prior-knowledge folder (``datasets/`` of nbnbhwyy/d-scIGM).

    Parameters
    ----------
    folder
        Holds ``hierarchical_prior_knowledge_layer.pkl`` (node names per level: a dict
        ``{1: [...], ..., L: [...]}``, level ``L`` the gene symbols),
        ``hierarchical_prior_knowledge_edge.pkl`` (a list whose item ``i`` maps each node of
        level ``i`` to its children in level ``i + 1``) and, with ``string_links``,
        ``9606.protein.links.v11.5_700.txt``. The pickles are read by a restricted unpickler
        that builds only lists, dicts, strings and numbers (nothing in them is executed).
    string_links
        Connect input genes to the gene nodes of their STRING neighbours, as the authors
        (``False``: same-symbol connections only, when the links file is missing).

    Raises
    ------
    InputError
        A file is missing or is not of that form.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"prior folder {folder} does not exist")
    paths = [folder / HIERARCHY_LEVELS_FILE, folder / HIERARCHY_EDGES_FILE]
    if string_links:
        paths.append(folder / STRING_LINKS_FILE)
    for path in paths:
        if not path.is_file():
            hint = (" (or set prior_string=false to connect each gene to its own node only)"
                    if path.name == STRING_LINKS_FILE else "")
            raise InputError(f"{path} is missing: the prior folder must hold the authors' "
                             f"{', '.join(p.name for p in paths)}{hint}")
    levels_raw = _safe_unpickle(paths[0])
    edges_raw = _safe_unpickle(paths[1])
    if not (isinstance(levels_raw, dict) and levels_raw and all(isinstance(k, int) for k in levels_raw)):
        raise InputError(f"{paths[0]}: expected a dict of levels 1..L to lists of node names")
    depth = len(levels_raw)
    if sorted(levels_raw) != list(range(1, depth + 1)) or depth < 2:
        raise InputError(f"{paths[0]}: levels must be numbered 1..L with L >= 2, got {sorted(levels_raw)}")
    levels = [_string_list(levels_raw[i], f"{paths[0]}: level {i}") for i in range(1, depth + 1)]
    if not isinstance(edges_raw, list) or len(edges_raw) < depth:
        raise InputError(f"{paths[1]}: expected a list of {depth} dicts (item i: the children of level i)")
    children: list[dict[str, frozenset[str]]] = []
    for i in range(1, depth):
        item = edges_raw[i]
        if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
            raise InputError(f"{paths[1]}: item {i} is not a dict of node names to children")
        children.append({k: frozenset(_string_list(v, f"{paths[1]}: children of {k}")) for k, v in item.items()})
    links = read_string_links(paths[2]) if string_links else frozenset()
    return HierarchicalPrior(levels=levels, children=children, links=links, source=str(folder))
