"""Small model outputs shipped with the package, for the README's first command and for tests.

``yan_nmf``: a 10-topic scikit-learn NMF of Yan et al. 2013 (90 human preimplantation embryo
cells x 4656 genes, 6 developmental stages), made by ``scripts/make_example_yan_nmf.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Example", "EXAMPLES"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Example:
    """Files of one shipped example and the gene sets it is scored against by default."""

    name: str
    about: str
    gene_sets: str

    @property
    def topic_gene(self) -> Path:
        """Topic-gene CSV (gzip) with a header of gene names."""
        return _HERE / f"{self.name}_topic_gene.csv.gz"

    @property
    def cell_topic(self) -> Path:
        """Cell-topic CSV (gzip)."""
        return _HERE / f"{self.name}_cell_topic.csv.gz"

    @property
    def labels(self) -> Path:
        """Cell labels, one a line."""
        return _HERE / f"{self.name}_labels.txt"


EXAMPLES: dict[str, Example] = {
    "yan_nmf": Example(
        name="yan_nmf",
        about="10-topic NMF of Yan et al. 2013 (90 human embryo cells, 4656 genes, 6 stages)",
        gene_sets="reactome",
    ),
}
