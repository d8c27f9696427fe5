"""Gene-set collections: GMT reading and the sparse :class:`GeneSets` membership matrix.

GMT format: one set a line, tab-separated: name, description (may be blank), then gene symbols.
Accepted variations: gzip-compressed files (detected by content), blank lines, Enrichr-style
weighted entries (``GENE,1.0`` reads as ``GENE``), repeated genes within a set (kept once),
Windows line ends. Refused with :class:`~topiceval.errors.GeneSetFormatError`: duplicate set names,
a line without a tab, an HTML page, text that is not UTF-8, a file with no sets.

Case rule: with ``case="upper"`` (the default) symbols from the file and from the model are both
upper-cased before matching, so ``Actb`` matches ``ACTB``; ``case="exact"`` compares them as
written. The rule is recorded in :meth:`GeneSets.config`. Symbols are always matched whole
(``HLA-C`` is never split into ``HLA`` and ``C``).

Symbol-and-ID rule: a model gene whose name is not in the collection as written, but joins a
symbol and an Ensembl gene ID with ``_`` or ``|`` (``CCL5_ENSG00000161570``, as scater's
``uniquifyFeatureNames`` names genes whose symbol is duplicated in the reference, or
``ENSG00000161570|CCL5``; the ID may carry a version, ``.12``), is matched by its symbol part.
:meth:`GeneSets.symbol_aliases` lists these matches and :meth:`GeneSets.coverage` reports them.
Other uniquifying suffixes (``CCL5-1``, ``CCL5.1``) are ambiguous with real symbols
(``NKX2-1``, ``RP11-290F20.3``) and are never stripped.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from topiceval._utils import PathLike, as_path, preview, sha256_file
from topiceval.errors import GeneSetFormatError, InputError

__all__ = ["GeneSets", "Coverage", "read_gmt", "combine", "overlap", "normalize_symbols", "CASE_RULES"]

CaseRule = Literal["upper", "exact"]
CASE_RULES: tuple[str, ...] = ("upper", "exact")

_WHITESPACE = re.compile(r"\s")
#: An Ensembl gene ID (any species: ``ENSG``, ``ENSMUSG``, ...), optionally versioned.
_ENSEMBL_GENE = r"ENS[A-Z]{0,6}G\d{11}(?:\.\d+)?"
#: A symbol joined to its Ensembl gene ID, either way round (see the module docstring).
_SYMBOL_AND_ID = re.compile(
    rf"^(?P<before>.+?)[_|]{_ENSEMBL_GENE}$|^{_ENSEMBL_GENE}[_|](?P<after>.+)$", re.IGNORECASE
)

#: Below this fraction of model genes found in any set, :meth:`GeneSets.coverage` warns.
LOW_COVERAGE = 0.5
#: Left edges of the set-size bins of :meth:`GeneSets.size_summary` (15 and 500 are the usual
#: GSEA size limits).
SIZE_BINS: tuple[int, ...] = (1, 5, 15, 50, 100, 500)


def normalize_symbols(symbols: Iterable[str], case: CaseRule = "upper") -> np.ndarray:
    """Apply the case rule to gene symbols (surrounding whitespace is always removed).

    Returns an object array of ``str``. Works on one joined string (C-speed ``upper`` and
    ``split``), which matters for whole-MSigDB files of millions of entries.
    """
    if case not in CASE_RULES:
        raise InputError(f"unknown case rule {case!r}; use one of {', '.join(CASE_RULES)}")
    items = [str(s) for s in symbols]
    if not items:
        return np.array([], dtype=object)
    joined = "\x00".join(items)
    if case == "upper":
        joined = joined.upper()
    parts = joined.split("\x00")
    if _WHITESPACE.search(joined):
        parts = [p.strip() for p in parts]
    out = np.empty(len(parts), dtype=object)
    out[:] = parts
    return out


@dataclass(frozen=True)
class Coverage:
    """How many model genes a gene-set collection knows.

    Attributes
    ----------
    n_genes
        Number of model genes.
    n_covered
        Model genes found in at least one set.
    fraction
        ``n_covered / n_genes``.
    missing
        Model genes found in no set, in model order.
    aliased
        Model genes matched by the symbol part of a symbol-and-Ensembl-ID name
        (``{"CCL5_ENSG00000161570": "CCL5"}``; see :meth:`GeneSets.symbol_aliases`), in model order.
    """

    n_genes: int
    n_covered: int
    fraction: float
    missing: list[str] = field(repr=False)
    aliased: dict[str, str] = field(default_factory=dict, repr=False)

    def as_dict(self, max_missing: int = 50) -> dict[str, Any]:
        """JSON-friendly summary with at most ``max_missing`` missing (and aliased) genes listed."""
        out = asdict(self)
        out["n_missing"] = len(self.missing)
        out["missing"] = self.missing[:max_missing]
        out["n_aliased"] = len(self.aliased)
        out["aliased"] = dict(list(self.aliased.items())[:max_missing])
        return out


class GeneSets:
    """A gene-set collection as a sparse sets x genes membership matrix.

    Parameters
    ----------
    names
        Set names, unique.
    genes
        Gene symbols (already case-normalised), unique, in column order.
    membership
        Boolean ``(n_sets, n_genes)`` sparse matrix; converted to CSR.
    descriptions
        One description per set (may be empty strings).
    case
        The case rule the symbols were normalised with.
    source
        Where the collection came from (file name, shipped name, ``"dict"``).
    sha256
        SHA-256 of the source file's bytes, or :attr:`content_sha256` for in-memory collections.
    filters
        Filters applied so far (``min_size``, ``max_size``), recorded in :meth:`config`.
    species
        ``"human"``, ``"mouse"`` or ``None`` (unknown): the species of the symbols in the sets.
    provenance
        Where the collection comes from: ``collection``, ``release``, ``url`` (recorded in
        :meth:`config`).
    species_match
        How model genes are matched across species, set by :func:`topiceval.gene_sets.load`
        (``species=``, ``cross_species=``); ``None`` when no species was declared.

    Notes
    -----
    Build with :func:`read_gmt` or :meth:`from_dict` rather than directly.
    """

    def __init__(
        self,
        names: Sequence[str],
        genes: Sequence[str],
        membership: sp.spmatrix | sp.sparray,
        descriptions: Sequence[str] | None = None,
        *,
        case: CaseRule = "upper",
        source: str = "",
        sha256: str | None = None,
        filters: Mapping[str, Any] | None = None,
        species: str | None = None,
        provenance: Mapping[str, Any] | None = None,
        species_match: Mapping[str, Any] | None = None,
    ) -> None:
        self.names = pd.Index(list(names), dtype=object, name="gene_set")
        self.genes = pd.Index(list(genes), dtype=object, name="gene")
        if not self.names.is_unique:
            raise InputError(f"duplicate gene-set names: {preview(self.names[self.names.duplicated()])}")
        if not self.genes.is_unique:
            raise InputError(f"duplicate genes: {preview(self.genes[self.genes.duplicated()])}")
        matrix = sp.csr_matrix(membership, dtype=bool)
        if matrix.shape != (len(self.names), len(self.genes)):
            raise InputError(
                f"membership has shape {matrix.shape}, expected {(len(self.names), len(self.genes))}"
            )
        matrix.sum_duplicates()
        matrix.sort_indices()
        self.membership: sp.csr_matrix = matrix
        self.descriptions = list(descriptions) if descriptions is not None else [""] * len(self.names)
        if case not in CASE_RULES:
            raise InputError(f"unknown case rule {case!r}; use one of {', '.join(CASE_RULES)}")
        self.case: CaseRule = case
        self.source = source
        self.sha256 = sha256 if sha256 is not None else self.content_sha256
        self.filters = dict(filters or {})
        self.species = species
        self.provenance = dict(provenance or {})
        self.species_match = None if species_match is None else dict(species_match)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(
        cls,
        sets: Mapping[str, Iterable[str]],
        *,
        case: CaseRule = "upper",
        source: str = "dict",
        descriptions: Mapping[str, str] | None = None,
    ) -> GeneSets:
        """Build from ``{set name: genes}``. Repeated genes within a set are kept once."""
        names = [str(name) for name in sets]
        gene_lists = [list(sets[name]) for name in sets]
        desc = [str((descriptions or {}).get(name, "")) for name in sets]
        return _build(names, desc, gene_lists, case=case, source=source, sha256=None)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_sets(self) -> int:
        """Number of sets."""
        return len(self.names)

    @property
    def n_genes(self) -> int:
        """Number of distinct genes over all sets."""
        return len(self.genes)

    @property
    def sizes(self) -> np.ndarray:
        """Number of genes in each set."""
        return np.diff(self.membership.indptr)

    def __len__(self) -> int:
        return self.n_sets

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> list[str]:
        try:
            row = self.names.get_loc(name)
        except KeyError:
            raise KeyError(f"no gene set named {name!r}") from None
        start, stop = self.membership.indptr[row], self.membership.indptr[row + 1]
        return list(self.genes[self.membership.indices[start:stop]])

    def __repr__(self) -> str:
        return (
            f"GeneSets({self.n_sets} sets x {self.n_genes} genes, case={self.case!r}, "
            f"source={self.source!r})"
        )

    def to_dict(self) -> dict[str, list[str]]:
        """``{set name: genes}`` (genes in column order)."""
        return {name: self[name] for name in self.names}

    def config(self) -> dict[str, Any]:
        """What identifies this collection in a result.

        Source, file hash, size, case rule, filters (``min_size``, ``max_size``), and where known
        the registry collection, release and URL, the species of the symbols and the declared
        species rule (``species_match``).
        """
        return {
            "source": self.source,
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "n_sets": self.n_sets,
            "n_genes": self.n_genes,
            "case": self.case,
            "filters": dict(self.filters),
            "collection": self.provenance.get("collection"),
            "release": self.provenance.get("release"),
            "url": self.provenance.get("url"),
            "species": self.species,
            "species_match": None if self.species_match is None else dict(self.species_match),
        }

    def size_summary(self, bins: Sequence[int] = SIZE_BINS) -> dict[str, Any]:
        """Distribution of set sizes: quantiles, mean, and set counts per size bin.

        ``bins`` are left-closed bin edges; the last bin is open-ended. Returns ``min``, ``q25``,
        ``median``, ``q75``, ``max``, ``mean`` and ``bins``: ``{"[lo, hi)": count, ...}``.
        """
        sizes = self.sizes
        edges = [int(b) for b in bins]
        counts = np.histogram(sizes, bins=[*edges, max(int(sizes.max()) + 1, edges[-1] + 1)])[0]
        labels = [f"[{lo}, {hi})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        labels.append(f">= {edges[-1]}")
        below = int((sizes < edges[0]).sum())
        out_bins = ({f"< {edges[0]}": below} if below else {}) | dict(zip(labels, counts.tolist(), strict=True))
        q25, median, q75 = np.percentile(sizes, [25, 50, 75])
        return {
            "min": int(sizes.min()),
            "q25": float(q25),
            "median": float(median),
            "q75": float(q75),
            "max": int(sizes.max()),
            "mean": float(sizes.mean()),
            "bins": out_bins,
        }

    def _with(self, **attributes: Any) -> GeneSets:
        """A shallow copy with some metadata attributes replaced (the matrix is shared)."""
        new = copy.copy(self)
        for name, value in attributes.items():
            setattr(new, name, value)
        return new

    # ------------------------------------------------------------------ matching
    def _match(self, gene_names: Iterable[str]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Case-normalised names, their columns (``-1``: none) and the symbol-and-ID matches
        ``{position: symbol}``."""
        normalized = normalize_symbols(gene_names, self.case)
        index = self.genes.get_indexer(normalized).astype(np.int64)
        positions, symbols = [], []
        for i in np.flatnonzero(index < 0):
            found = _SYMBOL_AND_ID.match(normalized[i])
            if found is not None:
                positions.append(int(i))
                symbols.append((found["before"] or found["after"]).strip())
        aliases: dict[int, str] = {}
        if positions:
            columns = self.genes.get_indexer(symbols)
            for i, symbol, column in zip(positions, symbols, columns, strict=True):
                if column >= 0:
                    index[i] = column
                    aliases[i] = str(self.genes[column])
        return normalized, index, aliases

    def gene_index(self, gene_names: Iterable[str]) -> np.ndarray:
        """Column of each model gene in :attr:`membership`, ``-1`` where no set has it.

        Model symbols are normalised with this collection's case rule first; a name not found
        as written that joins a symbol and an Ensembl gene ID (``CCL5_ENSG00000161570``) is
        matched by its symbol (see :meth:`symbol_aliases`). Model genes that match the same
        column by these rules (``Actb`` and ``ACTB``, or ``CCL5`` and ``CCL5_ENSG00000161570``)
        trigger a warning.
        """
        normalized, index, aliases = self._match(gene_names)
        self._warn_coincident(normalized, aliases)
        return index

    def _warn_coincident(self, normalized: np.ndarray, aliases: dict[int, str]) -> None:
        """Warn when model genes match the same column (after the case and symbol-and-ID rules)."""
        names = pd.Index(normalized)
        if aliases:
            effective = normalized.copy()
            for i, symbol in aliases.items():
                effective[i] = symbol
            names = pd.Index(effective)
        if len(names) and names.has_duplicates:
            dupes = names[names.duplicated()].unique()
            rules = f"the {self.case!r} case rule" + (" and the symbol-and-ID rule" if aliases else "")
            warnings.warn(
                f"{len(dupes)} model gene symbol(s) coincide after {rules} "
                f"({preview(dupes)}); they match the same gene-set column",
                stacklevel=3,
            )

    def symbol_aliases(self, gene_names: Iterable[str]) -> dict[str, str]:
        """Model genes matched by the symbol part of a symbol-and-Ensembl-ID name.

        Returns ``{model gene: collection symbol}`` (in model order) for the names not in the
        collection as written that join a symbol and an Ensembl gene ID with ``_`` or ``|``,
        either way round (``CCL5_ENSG00000161570``, ``ENSG00000161570|CCL5``), and whose symbol
        is in the collection: :meth:`gene_index` matches them by that symbol.

        Examples
        --------
        >>> gs = GeneSets.from_dict({"S": ["CCL5", "PTPRC"]})
        >>> gs.symbol_aliases(["CCL5_ENSG00000161570", "PTPRC", "XYZ_ENSG00000000001"])
        {'CCL5_ENSG00000161570': 'CCL5'}
        """
        names = [str(g) for g in gene_names]
        _, _, aliases = self._match(names)
        return {names[i]: symbol for i, symbol in aliases.items()}

    def coverage(self, gene_names: Iterable[str], *, warn: bool = True) -> Coverage:
        """How many model genes appear in any set.

        Warns (unless ``warn=False``) below 50 % coverage; raises :class:`~topiceval.errors.InputError` when no model gene
        is found (usually a species or identifier mismatch). When the collection's species is
        known and no species was declared with :func:`topiceval.gene_sets.load`, also warns if
        the model's symbols look like the other species' (see :mod:`.species`).
        """
        names = [str(g) for g in gene_names]
        if warn:
            self._check_species(names)
        normalized, index, aliases = self._match(names)
        self._warn_coincident(normalized, aliases)
        found = index >= 0
        n_covered = int(found.sum())
        missing = [name for name, ok in zip(names, found, strict=True) if not ok]
        aliased = {names[i]: symbol for i, symbol in aliases.items()}
        result = Coverage(len(names), n_covered, n_covered / len(names) if names else 0.0, missing, aliased)
        if n_covered == 0:
            raise InputError(
                f"none of the {len(names)} model genes appears in {self.source or 'the gene sets'} "
                f"(e.g. {preview(names, 5)} vs {preview(self.genes[:5], 5)}): wrong species, "
                "identifiers (Ensembl vs symbols) or case rule?"
            )
        if warn and result.fraction < LOW_COVERAGE:
            warnings.warn(
                f"only {n_covered} of {len(names)} model genes ({result.fraction:.0%}) appear in "
                f"{self.source or 'the gene sets'}",
                stacklevel=2,
            )
        return result

    def _check_species(self, gene_names: list[str]) -> None:
        """Warn when undeclared model genes look like another species than the sets'."""
        if self.species is None or self.species_match is not None:
            return
        from .species import guess_species

        guess = guess_species(gene_names)
        if guess is None or guess == self.species:
            return
        warnings.warn(
            f"the model genes look like {guess} symbols ({preview(gene_names, 3)}) but "
            f"{self.source or 'the gene sets'} holds {self.species} symbols; declare it: "
            f"load(..., species={guess!r}, cross_species=True) matches them case-insensitively "
            f"(no ortholog mapping), or use a {guess} collection",
            stacklevel=3,
        )

    def filter(self, min_size: int | None = None, max_size: int | None = None) -> GeneSets:
        """Keep sets with ``min_size <= size <= max_size`` (bounds inclusive, ``None`` = open)."""
        keep = np.ones(self.n_sets, dtype=bool)
        if min_size is not None:
            keep &= self.sizes >= min_size
        if max_size is not None:
            keep &= self.sizes <= max_size
        rows = np.flatnonzero(keep)
        sub = self.membership[rows]
        used = np.unique(sub.indices)
        filters = dict(self.filters)
        filters.update({k: v for k, v in (("min_size", min_size), ("max_size", max_size)) if v is not None})
        return GeneSets(
            self.names[rows],
            self.genes[used],
            sub[:, used],
            [self.descriptions[i] for i in rows],
            case=self.case,
            source=self.source,
            sha256=self.sha256,
            filters=filters,
            species=self.species,
            provenance=self.provenance,
            species_match=self.species_match,
        )

    def write_gmt(self, path: PathLike) -> None:
        """Write as a plain GMT file, atomically."""
        from topiceval.io import atomic_write

        with atomic_write(path) as handle:
            for name, desc in zip(self.names, self.descriptions, strict=True):
                handle.write("\t".join([name, desc, *self[name]]) + "\n")

    @functools.cached_property
    def content_sha256(self) -> str:
        """SHA-256 of the collection's content, independent of file format, compression and order.

        Hashes the sorted set names, the sorted genes and the membership matrix in that order, so
        a plain and a gzip copy of one GMT (or the same sets from a dict) hash alike.
        """
        rows = np.argsort(self.names.to_numpy(dtype=str), kind="stable")
        cols = np.argsort(self.genes.to_numpy(dtype=str), kind="stable")
        matrix = self.membership[rows][:, cols].tocsr()
        matrix.sort_indices()
        digest = hashlib.sha256()
        digest.update("\t".join(self.names[rows]).encode())
        digest.update(b"\n")
        digest.update("\t".join(self.genes[cols]).encode())
        digest.update(b"\n")
        digest.update(matrix.indptr.astype(np.int64).tobytes())
        digest.update(matrix.indices.astype(np.int64).tobytes())
        return digest.hexdigest()


def _build(
    names: list[str],
    descriptions: list[str],
    gene_lists: list[list[str]],
    *,
    case: CaseRule,
    source: str,
    sha256: str | None,
) -> GeneSets:
    """Membership matrix from parsed sets (vectorised over all entries at once)."""
    index = pd.Index(names)
    if index.has_duplicates:
        dupes = sorted(index[index.duplicated()].unique())
        raise GeneSetFormatError(f"{source}: duplicate gene-set names: {preview(dupes)}")
    sizes = np.fromiter((len(g) for g in gene_lists), dtype=np.int64, count=len(gene_lists))
    flat = normalize_symbols([g for genes in gene_lists for g in genes], case)
    nonblank = flat != ""
    rows = np.repeat(np.arange(len(names)), sizes)[nonblank]
    flat = flat[nonblank]
    codes, genes = pd.factorize(flat, sort=True)
    matrix = sp.csr_matrix(
        (np.ones(len(codes), dtype=bool), (rows, codes)), shape=(len(names), len(genes))
    )
    empty = np.flatnonzero(np.diff(matrix.indptr) == 0)
    if len(empty) == len(names):
        raise GeneSetFormatError(f"{source}: no gene set has any gene")
    if len(empty):
        warnings.warn(
            f"{source}: {len(empty)} gene set(s) without genes were skipped: "
            f"{preview(names[i] for i in empty)}",
            stacklevel=3,
        )
        keep = np.flatnonzero(np.diff(matrix.indptr) > 0)
        matrix = matrix[keep]
        names = [names[i] for i in keep]
        descriptions = [descriptions[i] for i in keep]
    return GeneSets(
        names, list(genes), matrix, descriptions, case=case, source=source, sha256=sha256
    )


def read_gmt(path: PathLike, *, case: CaseRule = "upper", source: str | None = None) -> GeneSets:
    """Read a GMT file (plain or gzip) into :class:`GeneSets`.

    Parameters
    ----------
    path
        The GMT file.
    case
        Case rule for symbols: ``"upper"`` (default) or ``"exact"``.
    source
        Name recorded in results; defaults to the file name.

    Raises
    ------
    GeneSetFormatError
        Malformed file (see the module docstring); the message names the line.
    InputError
        Missing file.
    """
    p = as_path(path)
    if not p.exists():
        raise InputError(f"gene-set file not found: {p}")
    if p.is_dir():
        raise InputError(f"gene-set path is a folder, not a file: {p}")
    label = source or p.name
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise GeneSetFormatError(f"{label}: corrupt gzip data: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GeneSetFormatError(f"{label}: not UTF-8 text ({exc}); is it a GMT file?") from None
    names, descriptions, gene_lists = _parse_gmt(text, label)
    return _build(names, descriptions, gene_lists, case=case, source=label, sha256=sha256_file(p))


def _parse_gmt(text: str, label: str) -> tuple[list[str], list[str], list[list[str]]]:
    names: list[str] = []
    descriptions: list[str] = []
    gene_lists: list[list[str]] = []
    first_lines: dict[str, int] = {}
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype", "<html", "<?xml", "<head", "<body")):
        raise GeneSetFormatError(f"{label}: this is an HTML/XML page, not a GMT file")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 2:
            raise GeneSetFormatError(
                f"{label}, line {number}: no tab found; GMT fields (name, description, genes) "
                "are tab-separated"
            )
        name = fields[0].strip()
        if not name:
            raise GeneSetFormatError(f"{label}, line {number}: empty gene-set name")
        if name in first_lines:
            raise GeneSetFormatError(
                f"{label}, line {number}: duplicate gene-set name {name!r} "
                f"(first at line {first_lines[name]})"
            )
        first_lines[name] = number
        names.append(name)
        descriptions.append(fields[1].strip())
        genes = fields[2:]
        if "," in line:  # Enrichr libraries may weight entries as "GENE,1.0": keep the symbol.
            genes = [g.split(",", 1)[0] for g in genes]
        gene_lists.append(genes)  # blank entries and whitespace are removed when normalising
    if not names:
        raise GeneSetFormatError(f"{label}: no gene sets found (empty file?)")
    return names, descriptions, gene_lists



def combine(collections: Sequence[GeneSets], *, source: str | None = None) -> GeneSets:
    """The union of several collections: every set of each, over the union of their genes.

    Used to score against two files as one corpus (e.g. MSigDB C2 and C5 GO BP as a stand-in for
    the whole database). Set names must be unique across the collections (a name in two of them
    is an error rather than a silent choice), the case rules must agree, and so must the species
    where known. Size filters are applied after combining (:func:`topiceval.gene_sets.load` does).

    Parameters
    ----------
    collections
        Two or more :class:`GeneSets` (one is returned as is).
    source
        Name recorded in results; default: the parts' sources joined by ``" + "``.

    Returns
    -------
    GeneSets
        Sets in the order given; ``sha256`` is the combined :attr:`~GeneSets.content_sha256`
        (there is no single file), ``provenance["parts"]`` the :meth:`~GeneSets.config` of each part.

    Raises
    ------
    InputError
        No collection, duplicate set names, different case rules, species or filters.
    """
    parts = list(collections)
    if not parts:
        raise InputError("combine: no gene-set collection given")
    if len(parts) == 1:
        return parts[0]
    cases = {p.case for p in parts}
    if len(cases) > 1:
        raise InputError(f"combine: the collections use different case rules ({', '.join(sorted(cases))})")
    species = {p.species for p in parts if p.species is not None}
    if len(species) > 1:
        raise InputError(f"combine: the collections hold symbols of different species ({', '.join(sorted(species))})")
    filters = [p.filters for p in parts]
    if any(f != filters[0] for f in filters):
        raise InputError("combine: the collections were filtered differently; combine first, then filter")
    names = pd.Index([n for p in parts for n in p.names])
    if names.has_duplicates:
        raise InputError(f"combine: gene-set names in more than one collection: "
                         f"{preview(sorted(names[names.duplicated()].unique()))}")
    genes = pd.Index(sorted(set().union(*(set(p.genes) for p in parts))), dtype=object)
    blocks = []
    for p in parts:
        columns = genes.get_indexer(p.genes)
        coo = p.membership.tocoo()
        blocks.append(sp.csr_matrix((coo.data, (coo.row, columns[coo.col])), shape=(p.n_sets, len(genes)),
                                    dtype=bool))
    label = source or " + ".join(p.source or "?" for p in parts)
    parts_config = [{k: v for k, v in p.config().items() if k not in ("species_match",)} for p in parts]
    return GeneSets(names, genes, sp.vstack(blocks, format="csr"),
                    [d for p in parts for d in p.descriptions], case=parts[0].case, source=label,
                    sha256=None, filters=filters[0], species=species.pop() if species else None,
                    provenance={"collection": None, "release": None, "url": None, "parts": parts_config})


def overlap(sets: GeneSets, other: GeneSets, *, min_jaccard: float = 0.5) -> dict[str, Any]:
    """How many sets of ``sets`` reappear in ``other``: the same genes, or nearly.

    For each set of ``sets`` its best Jaccard index (shared genes / genes in either) against any
    set of ``other``, with symbols matched as stored (both collections case-normalised by their
    readers). Used to flag scores that are partly circular: a model guided by a gene-set prior
    that shares sets with the collection it is scored against.

    Parameters
    ----------
    sets
        The collection asked about (e.g. a model's prior).
    other
        The collection it is compared with (e.g. the one scores are computed against).
    min_jaccard
        A set counts as ``similar`` when its best Jaccard index is at least this (0 to 1].

    Returns
    -------
    dict
        ``n_sets`` (sets in ``sets``), ``identical`` (sets with a set of the same genes in
        ``other``), ``similar`` (best Jaccard >= ``min_jaccard``, the identical ones included),
        ``min_jaccard``, ``best`` (per set of ``sets``, its best Jaccard index, a float array) and
        ``matches`` (``(name, other name, jaccard)`` of the similar sets, best first).

    Examples
    --------
    >>> a = GeneSets.from_dict({"x": ["A", "B", "C"], "y": ["D", "E"]})
    >>> b = GeneSets.from_dict({"p": ["A", "B", "C"], "q": ["D", "F", "G"]})
    >>> {k: v for k, v in overlap(a, b).items() if k in ("identical", "similar")}
    {'identical': 1, 'similar': 1}
    """
    if not 0 < min_jaccard <= 1:
        raise InputError(f"min_jaccard must be in (0, 1], got {min_jaccard}")
    common = sets.genes.intersection(other.genes)
    best = np.zeros(sets.n_sets)
    partner = np.full(sets.n_sets, -1)
    if len(common) and sets.n_sets and other.n_sets:
        a = sets.membership[:, sets.genes.get_indexer(common)].astype(np.int32)
        b = other.membership[:, other.genes.get_indexer(common)].astype(np.int32)
        shared = (a @ b.T).tocoo()  # genes two sets share, for every pair that shares any
        union = sets.sizes[shared.row] + other.sizes[shared.col] - shared.data
        jaccard = shared.data / union
        order = np.lexsort((-jaccard, shared.row))  # per set of `sets`, its best pair first
        first = np.r_[True, shared.row[order][1:] != shared.row[order][:-1]]
        rows, picked = shared.row[order][first], order[first]
        best[rows] = jaccard[picked]
        partner[rows] = shared.col[picked]
    similar = np.flatnonzero(best >= min_jaccard)
    similar = similar[np.argsort(-best[similar], kind="stable")]
    return {
        "n_sets": int(sets.n_sets),
        "identical": int(np.sum(best >= 1.0)),
        "similar": int(similar.size),
        "min_jaccard": float(min_jaccard),
        "best": best,
        "matches": [(str(sets.names[i]), str(other.names[partner[i]]), float(best[i])) for i in similar],
    }
