"""Gene-set collections (installed as ``topiceval.gene_sets``).

* :func:`read_gmt` and :class:`GeneSets`: a GMT file as a sparse sets x genes membership matrix.
* :func:`load`: one entry point for an MSigDB collection (``"msigdb:c2"`` with a release, downloaded
  once into a checksummed cache), a GMT path, a shipped collection name, a ``{name: genes}``
  mapping or an existing :class:`GeneSets`; with an explicit species rule.
* :mod:`.registry`: the MSigDB releases and collections and the Broad Institute's URL layout;
  :mod:`.download`: the cache and the downloader (:func:`fetch`, :func:`cache_dir`).
* :data:`SHIPPED`: the small collections shipped with the package (Hallmark, Reactome, mouse
  Hallmark); licences and citations in ``gene_sets/README.md``.
* :mod:`.species`: the cross-species rule (case-insensitive symbol match, never silent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from topiceval._utils import PathLike, as_path
from topiceval.errors import InputError

from .download import cache_dir, cached_files, fetch
from .gmt import CASE_RULES, Coverage, GeneSets, combine, normalize_symbols, overlap, read_gmt
from .registry import MSIGDB_RELEASES, is_msigdb_spec, normalize_species, releases, resolve
from .shipped import SHIPPED, ShippedCollection, shipped_path
from .species import CROSS_SPECIES_RULE, guess_species

__all__ = [
    "CASE_RULES",
    "CROSS_SPECIES_RULE",
    "Coverage",
    "GeneSets",
    "MSIGDB_RELEASES",
    "SHIPPED",
    "ShippedCollection",
    "cache_dir",
    "cached_files",
    "combine",
    "fetch",
    "guess_species",
    "load",
    "normalize_symbols",
    "overlap",
    "read_gmt",
    "releases",
    "resolve",
    "shipped_path",
]

GeneSetsLike = GeneSets | Mapping[str, Iterable[str]] | PathLike | list | tuple


def load(
    spec: GeneSetsLike,
    *,
    version: str | None = None,
    case: str = "upper",
    min_size: int | None = None,
    max_size: int | None = None,
    species: str | None = None,
    cross_species: bool = False,
    cache: PathLike | None = None,
    base_url: str | None = None,
    download: bool = True,
    progress: bool | None = None,
) -> GeneSets:
    """Load a gene-set collection.

    Parameters
    ----------
    spec
        One of

        * ``"msigdb:COLLECTION"`` with ``version=`` (or ``"msigdb:COLLECTION@VERSION"``): an
          MSigDB collection from the registry, e.g. ``load("msigdb:c2", version="2024.1.Hs")``,
          ``"msigdb:c2.cp.reactome@2024.1.Hs"``, ``"msigdb:mh@2024.1.Mm"``, ``"msigdb:all@2024.1.Hs"``
          (the whole database). Downloaded once into the cache (see :mod:`.download`), then read
          from there after its sha256 is checked; ``topiceval gene-sets list`` shows the releases;
        * a :class:`GeneSets` (returned as is, filtered if sizes are given);
        * a mapping ``{set name: genes}``;
        * the name of a shipped collection (``"hallmark"``, ``"reactome"``, ``"mouse_hallmark"``);
        * the path of a GMT file (plain or gzip);
        * a list or tuple of any of these: their union (:func:`combine`; set names must be unique
          across the parts), e.g. ``["c2.all.v7.1.symbols.gmt", "c5.go.bp.v7.1.symbols.gmt"]``.
    version
        MSigDB release for an ``msigdb:`` spec (``"2024.1.Hs"``, ``"2024.1.Mm"``, ``"7.1"``).
    case
        Case rule for symbols, ``"upper"`` (default) or ``"exact"``; see :mod:`.gmt`.
    min_size, max_size
        Keep only sets of this many genes (inclusive); recorded in :meth:`GeneSets.config`.
    species
        Species of the *model's* genes (``"human"`` or ``"mouse"``). When the collection's species
        is known (registry and shipped collections) and differs, loading fails unless
        ``cross_species=True``. Recorded in ``config()["species_match"]``.
    cross_species
        Allow matching a model of ``species`` to a collection of the other species by the
        documented rule :data:`CROSS_SPECIES_RULE` (case-insensitive symbol match; needs
        ``case="upper"``). Never applied without this flag.
    cache, base_url, download, progress
        For ``msigdb:`` specs: cache folder (default ``$TOPICEVAL_CACHE`` or the user cache
        folder), server (default ``$TOPICEVAL_MSIGDB_URL`` or the Broad Institute's), whether a
        missing file may be downloaded, and whether to show a progress bar.

    Raises
    ------
    InputError
        Unknown file, shipped name, release or collection (the message lists the known ones), or
        a species mismatch without ``cross_species=True``.
    DownloadError
        An ``msigdb:`` file that is neither cached nor downloadable; the message says where to
        place it.
    """
    if isinstance(spec, list | tuple):
        if not spec:
            raise InputError("gene sets: an empty list of collections")
        parts = [load(part, version=version if is_msigdb_spec(part) else None, case=case, cache=cache, base_url=base_url, download=download,
                      progress=progress) for part in spec]
        gene_sets = _apply_species(combine(parts), species, cross_species)
        if min_size is not None or max_size is not None:
            gene_sets = gene_sets.filter(min_size=min_size, max_size=max_size)
        return gene_sets
    if version is not None and not is_msigdb_spec(spec):
        raise InputError(f"version={version!r} applies to msigdb: specs only, not to {spec!r}")
    if isinstance(spec, GeneSets):
        gene_sets = spec
    elif isinstance(spec, Mapping):
        gene_sets = GeneSets.from_dict(spec, case=case)  # type: ignore[arg-type]
    elif is_msigdb_spec(spec):
        entry = resolve(spec, version, base_url=base_url)  # type: ignore[arg-type]
        path = fetch(entry.collection, entry.version, cache=cache, base_url=base_url,
                     download=download, progress=progress)
        gene_sets = read_gmt(path, case=case, source=entry.spec)  # type: ignore[arg-type]
        gene_sets = gene_sets._with(
            species=entry.species,
            provenance={"collection": entry.collection, "release": entry.version, "url": entry.url},
        )
    elif isinstance(spec, str) and spec in SHIPPED:
        shipped = SHIPPED[spec]
        gene_sets = read_gmt(shipped.path, case=case, source=spec)  # type: ignore[arg-type]
        gene_sets = gene_sets._with(
            species=shipped.species,
            provenance={"collection": spec, "release": shipped.release, "url": None},
        )
    else:
        path = as_path(spec)
        if not path.exists():
            raise InputError(
                f"gene sets {str(spec)!r}: no such file, and not a shipped collection "
                f"(shipped: {', '.join(SHIPPED)}) or an msigdb:COLLECTION@VERSION spec"
            )
        gene_sets = read_gmt(path, case=case)  # type: ignore[arg-type]
    gene_sets = _apply_species(gene_sets, species, cross_species)
    if min_size is not None or max_size is not None:
        gene_sets = gene_sets.filter(min_size=min_size, max_size=max_size)
    return gene_sets


def _apply_species(gene_sets: GeneSets, species: str | None, cross_species: bool) -> GeneSets:
    """Check a declared model species against the collection's and record the rule."""
    if species is None:
        if cross_species:
            raise InputError("cross_species=True needs species=... (the species of the model's genes)")
        return gene_sets
    model = normalize_species(species)
    theirs = gene_sets.species
    crossed = theirs is not None and theirs != model
    if crossed and not cross_species:
        other = "msigdb:COLLECTION@VERSION.Mm" if model == "mouse" else "msigdb:COLLECTION@VERSION.Hs"
        raise InputError(
            f"{gene_sets.source or 'the gene sets'} holds {theirs} gene symbols but the model is "
            f"{model} (species={species!r}): use a {model} collection (e.g. {other}), or pass "
            f"cross_species=True to match {model} genes to {theirs} sets by case-insensitive "
            "symbol (no ortholog mapping)"
        )
    if crossed and gene_sets.case != "upper":
        raise InputError(
            "cross-species matching compares symbols case-insensitively: load with case='upper'"
        )
    if theirs is None:
        rule = "gene-set species unknown; symbols matched by the case rule"
    else:
        rule = CROSS_SPECIES_RULE if crossed else "same species"
    match = {"model_species": model, "gene_set_species": theirs, "cross_species": crossed, "rule": rule}
    return gene_sets._with(species_match=match)
