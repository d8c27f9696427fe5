"""Registry of MSigDB releases and collections, and the Broad Institute download layout.

MSigDB publishes one folder per release under
``https://data.broadinstitute.org/gsea-msigdb/msigdb/release/``, with one GMT file per collection
(gene symbols)::

    release/2024.1.Hs/c2.all.v2024.1.Hs.symbols.gmt      # human C2
    release/2024.1.Hs/msigdb.v2024.1.Hs.symbols.gmt      # the whole human database
    release/2024.1.Mm/m2.all.v2024.1.Mm.symbols.gmt      # mouse M2
    release/7.1/c2.all.v7.1.symbols.gmt                   # releases before 2022 (human only)

Since 2022.1 a release names its species (``Hs`` human, ``Mm`` mouse); the mouse collections
(``mh``, ``m1`` ...) hold native mouse symbols and are not a translation of the human ones. Older
releases (7.0 to 7.5.1) are human only and carry no species suffix.

Collections are named as in the file names: ``h``, ``c1`` ... ``c8`` (human), ``mh``, ``m1`` ...
(mouse), a sub-collection such as ``c2.cp.reactome`` or ``c5.go.bp``, and ``all`` for the whole
database (``msigdb.v*.symbols.gmt``). ``c2`` and ``c2.all`` name the same file.

The base URL can be changed (a mirror, or the local test server) with the ``base_url`` argument
or the ``TOPICEVAL_MSIGDB_URL`` environment variable. The lists below follow the MSigDB release
notes; adding a release is one line in :data:`MSIGDB_RELEASES`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from topiceval._utils import preview
from topiceval.errors import InputError

__all__ = [
    "DEFAULT_BASE_URL",
    "MSIGDB_RELEASES",
    "MsigdbFile",
    "Release",
    "base_url",
    "is_msigdb_spec",
    "parse_spec",
    "releases",
    "resolve",
]

#: Where the Broad Institute serves MSigDB files (``release/<version>/<file>`` below it).
DEFAULT_BASE_URL = "https://data.broadinstitute.org/gsea-msigdb/msigdb"
#: Environment variable overriding :data:`DEFAULT_BASE_URL` (a mirror, or a test server).
BASE_URL_ENV = "TOPICEVAL_MSIGDB_URL"
#: Prefix of a registry spec for :func:`topiceval.gene_sets.load`: ``"msigdb:c2"``.
PREFIX = "msigdb:"
#: Collection key of the whole database.
WHOLE = "all"

_TOP_DESCRIPTIONS = {
    "h": "hallmark gene sets",
    "c1": "positional gene sets",
    "c2": "curated gene sets (CGP + CP)",
    "c3": "regulatory target gene sets",
    "c4": "computational gene sets",
    "c5": "ontology gene sets (GO, HPO)",
    "c6": "oncogenic signature gene sets",
    "c7": "immunologic signature gene sets",
    "c8": "cell type signature gene sets",
    WHOLE: "the whole database (all collections)",
}
_MOUSE_OF = {"h": "mh", "c1": "m1", "c2": "m2", "c3": "m3", "c5": "m5", "c7": "m7", "c8": "m8"}
_HUMAN_OF = {mouse: human for human, mouse in _MOUSE_OF.items()}


@dataclass(frozen=True)
class Release:
    """One MSigDB release.

    Attributes
    ----------
    version
        As MSigDB spells it in folder and file names: ``"2024.1.Hs"``, ``"2024.1.Mm"``, ``"7.1"``.
    species
        ``"human"`` or ``"mouse"``: the species of the gene symbols in every file of the release.
    collections
        Collection keys this release offers (see the module docstring).
    """

    version: str
    species: str
    collections: tuple[str, ...]

    def filename(self, collection: str) -> str:
        """File name of a collection: ``c2.all.v2024.1.Hs.symbols.gmt``."""
        stem = "msigdb" if collection == WHOLE else (
            collection if "." in collection else f"{collection}.all"
        )
        return f"{stem}.v{self.version}.symbols.gmt"

    def description(self, collection: str) -> str:
        """Short description of a collection key."""
        top = collection.split(".")[0]
        human = _HUMAN_OF.get(top, top)
        text = _TOP_DESCRIPTIONS.get(human, "")
        if "." in collection:
            return f"sub-collection {collection.upper()} of {top.upper()} ({text})"
        return text


@dataclass(frozen=True)
class MsigdbFile:
    """A resolved registry entry: which file, where it is served, where it is cached."""

    collection: str
    release: Release
    filename: str
    url: str

    @property
    def version(self) -> str:
        """The release version, e.g. ``"2024.1.Hs"``."""
        return self.release.version

    @property
    def species(self) -> str:
        """Species of the symbols in the file."""
        return self.release.species

    @property
    def cache_key(self) -> str:
        """Path of the file inside the cache folder (POSIX separators)."""
        return f"msigdb/{self.release.version}/{self.filename}"

    @property
    def spec(self) -> str:
        """The spec that names this file for :func:`topiceval.gene_sets.load`."""
        return f"{PREFIX}{self.collection}@{self.release.version}"


# ------------------------------------------------------------------------------ the releases
_HS_TOP = ("h", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", WHOLE)
_MM_TOP = ("mh", "m1", "m2", "m3", "m5", "m8", WHOLE)
_HS_SUB = (
    "c2.cgp", "c2.cp", "c2.cp.biocarta", "c2.cp.pid", "c2.cp.reactome", "c2.cp.wikipathways",
    "c3.mir", "c3.tft", "c4.cgn", "c4.cm",
    "c5.go", "c5.go.bp", "c5.go.cc", "c5.go.mf", "c5.hpo", "c7.immunesigdb", "c7.vax",
)
_HS_KEGG_OLD = ("c2.cp.kegg",)
_HS_KEGG_NEW = ("c2.cp.kegg_legacy", "c2.cp.kegg_medicus")  # KEGG split in 2023.2
_MM_SUB = (
    "m2.cgp", "m2.cp", "m2.cp.biocarta", "m2.cp.reactome", "m2.cp.wikipathways",
    "m5.go", "m5.go.bp", "m5.go.cc", "m5.go.mf",
)
# Releases 7.0-7.5.1: human only, no species suffix. GO sub-collections were c5.bp/cc/mf up to
# 7.1 and c5.go.bp/cc/mf (plus c5.hpo) from 7.2; C8 appeared in 7.2, C7's split in 7.3.
_LEGACY_SUB_71 = ("c2.cgp", "c2.cp", "c2.cp.biocarta", "c2.cp.kegg", "c2.cp.pid",
                  "c2.cp.reactome", "c3.mir", "c3.tft", "c4.cgn", "c4.cm", "c5.bp", "c5.cc", "c5.mf")
_LEGACY_SUB_72 = ("c2.cgp", "c2.cp", "c2.cp.biocarta", "c2.cp.kegg", "c2.cp.pid",
                  "c2.cp.reactome", "c2.cp.wikipathways", "c3.mir", "c3.tft", "c4.cgn", "c4.cm",
                  "c5.go", "c5.go.bp", "c5.go.cc", "c5.go.mf", "c5.hpo")
_LEGACY_TOP_71 = ("h", "c1", "c2", "c3", "c4", "c5", "c6", "c7", WHOLE)


def _hs(version: str, kegg: tuple[str, ...]) -> Release:
    return Release(version, "human", _HS_TOP + _HS_SUB + kegg)


def _mm(version: str, m7: bool = False) -> Release:
    top = _MM_TOP if not m7 else tuple(c for t in _MM_TOP for c in (("m7", t) if t == "m8" else (t,)))
    return Release(version, "mouse", top + _MM_SUB)


#: Known releases, newest first.
MSIGDB_RELEASES: dict[str, Release] = {
    r.version: r
    for r in (
        _hs("2025.1.Hs", _HS_KEGG_NEW),
        _mm("2025.1.Mm", m7=True),
        _hs("2024.1.Hs", _HS_KEGG_NEW),
        _mm("2024.1.Mm"),
        _hs("2023.2.Hs", _HS_KEGG_NEW),
        _mm("2023.2.Mm"),
        _hs("2023.1.Hs", _HS_KEGG_OLD),
        _mm("2023.1.Mm"),
        _hs("2022.1.Hs", _HS_KEGG_OLD),
        _mm("2022.1.Mm"),
        Release("7.5.1", "human", _HS_TOP + _LEGACY_SUB_72 + ("c7.immunesigdb", "c7.vax")),
        Release("7.5", "human", _HS_TOP + _LEGACY_SUB_72 + ("c7.immunesigdb", "c7.vax")),
        Release("7.4", "human", _HS_TOP + _LEGACY_SUB_72 + ("c7.immunesigdb", "c7.vax")),
        Release("7.3", "human", _HS_TOP + _LEGACY_SUB_72 + ("c7.immunesigdb", "c7.vax")),
        Release("7.2", "human", _HS_TOP + _LEGACY_SUB_72),
        Release("7.1", "human", _LEGACY_TOP_71 + _LEGACY_SUB_71),
        Release("7.0", "human", _LEGACY_TOP_71 + _LEGACY_SUB_71),
    )
}

_SPECIES_ALIASES = {"human": "human", "hs": "human", "homo sapiens": "human",
                    "mouse": "mouse", "mm": "mouse", "mus musculus": "mouse"}


def normalize_species(species: str) -> str:
    """``"human"`` or ``"mouse"`` from a species name or code (``Hs``, ``Mm``, Latin names)."""
    key = str(species).strip().lower()
    if key not in _SPECIES_ALIASES:
        raise InputError(f"unknown species {species!r}; use 'human' or 'mouse'")
    return _SPECIES_ALIASES[key]


def releases(species: str | None = None) -> list[str]:
    """Known release versions, newest first, optionally of one species."""
    wanted = None if species is None else normalize_species(species)
    return [v for v, r in MSIGDB_RELEASES.items() if wanted is None or r.species == wanted]


def base_url(override: str | None = None) -> str:
    """The base URL in use: ``override``, else ``$TOPICEVAL_MSIGDB_URL``, else the Broad's."""
    url = override or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


_base_url = base_url  # resolve() has a parameter of the same name


def is_msigdb_spec(spec: object) -> bool:
    """Whether ``spec`` is a registry spec (a string starting with ``msigdb:``)."""
    return isinstance(spec, str) and spec.strip().lower().startswith(PREFIX)


_SPEC = re.compile(r"^(?:msigdb:)?(?P<collection>[A-Za-z0-9_.]+?)(?:@(?P<version>[A-Za-z0-9_.]+))?$")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``"msigdb:c2@2024.1.Hs"`` (prefix and version optional) into collection and version."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise InputError(
            f"cannot read gene-set spec {spec!r}; write msigdb:COLLECTION or "
            "msigdb:COLLECTION@VERSION, e.g. msigdb:c2@2024.1.Hs"
        )
    collection = match["collection"].lower()
    if collection.endswith(".all"):
        collection = collection[: -len(".all")]
    if collection == "msigdb":
        collection = WHOLE
    return collection, match["version"]


def resolve(collection: str, version: str | None = None, *, base_url: str | None = None) -> MsigdbFile:
    """Find a collection in a release.

    Parameters
    ----------
    collection
        A collection key (``"c2"``, ``"c2.cp.reactome"``, ``"mh"``, ``"all"``), with or without
        the ``msigdb:`` prefix; ``"c2@2024.1.Hs"`` also gives the version.
    version
        Release, e.g. ``"2024.1.Hs"``; required (here or in ``collection``) so that every result
        names the exact release it used.
    base_url
        Server to download from; see :func:`base_url`.

    Raises
    ------
    InputError
        Unknown release or collection; the message lists the known ones.
    """
    key, inline = parse_spec(collection)
    if inline is not None and version is not None and inline != version:
        raise InputError(f"{collection!r} names release {inline} but version={version!r} was given")
    version = version or inline
    if version is None:
        raise InputError(
            f"give the MSigDB release of {PREFIX}{key} (version=..., or {PREFIX}{key}@VERSION); "
            f"known releases: {', '.join(MSIGDB_RELEASES)}"
        )
    version = _canonical_version(version)
    release = MSIGDB_RELEASES.get(version)
    if release is None:
        raise InputError(
            f"unknown MSigDB release {version!r}; known releases: {', '.join(MSIGDB_RELEASES)} "
            "(for another release, download its GMT file and pass the file's path)"
        )
    if key not in release.collections:
        hint = ""
        if release.species == "mouse" and key.split(".")[0] in _MOUSE_OF:
            top = key.split(".")[0]
            hint = (f" (release {version} holds mouse collections: the mouse counterpart of "
                    f"{top} is {_MOUSE_OF[top]})")
        elif release.species == "human" and key.split(".")[0] in _HUMAN_OF:
            hint = f" (release {version} holds human collections: mouse ones are in the .Mm releases)"
        raise InputError(
            f"MSigDB release {version} has no collection {key!r}{hint}; its collections: "
            f"{preview(release.collections, 40)}"
        )
    filename = release.filename(key)
    url = f"{_base_url(base_url)}/release/{release.version}/{filename}"
    return MsigdbFile(key, release, filename, url)


def _canonical_version(version: str) -> str:
    """Accept ``v2024.1.Hs``, ``2024.1.hs`` and ``2024.1.HS`` for ``2024.1.Hs``."""
    text = str(version).strip()
    if text[:1] in {"v", "V"}:
        text = text[1:]
    lowered = {v.lower(): v for v in MSIGDB_RELEASES}
    return lowered.get(text.lower(), text)
