"""Small gene-set collections shipped inside the package (see ``gene_sets/README.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ShippedCollection", "SHIPPED", "shipped_path"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedCollection:
    """One shipped GMT file and the facts a result should cite."""

    name: str
    file: str
    species: str
    release: str
    description: str
    source: str
    sha256: str

    @property
    def path(self) -> Path:
        """Location of the gzip-compressed GMT inside the installed package."""
        return _HERE / self.file


SHIPPED: dict[str, ShippedCollection] = {
    c.name: c
    for c in (
        ShippedCollection(
            name="hallmark",
            file="h.all.v7.1.symbols.gmt.gz",
            species="human",
            release="MSigDB v7.1",
            description="MSigDB Hallmark, 50 sets, human symbols",
            source="GSEA-MSigDB/GSEA2.jl (commit e5c53154)",
            sha256="8bbdc40459d5d6e65750b30c4e6e83936781a850199e243579f7791d29611f65",
        ),
        ShippedCollection(
            name="reactome",
            file="c2.cp.reactome.v2022.1.Hs.symbols.gmt.gz",
            species="human",
            release="MSigDB v2022.1.Hs",
            description="MSigDB C2 canonical pathways: Reactome, 1635 sets, human symbols",
            source="nbnbhwyy/d-scIGM (commit a1b1eec)",
            sha256="6539e7eae72ac50f794072d0a9e1b0c321338d9d89963a49cb0618f5450e40dc",
        ),
        ShippedCollection(
            name="mouse_hallmark",
            file="mouse.h.all.v7.1.symbols.gmt.gz",
            species="mouse",
            release="MSigDB v7.1 (mapped to mouse orthologs by msigdbi)",
            description="MSigDB Hallmark mapped to mouse symbols, 50 sets",
            source="mw201608/msigdb (commit a12c8dda)",
            sha256="c5d26cccbab390f34f08878343e6b9769e75550a9b71adaa318edc74d5caaddd",
        ),
    )
}


def shipped_path(name: str) -> Path:
    """Path of a shipped collection by name; ``KeyError`` lists the known names."""
    try:
        return SHIPPED[name].path
    except KeyError:
        raise KeyError(f"no shipped gene-set collection {name!r}; shipped: {', '.join(SHIPPED)}") from None
