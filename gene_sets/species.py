"""Species of gene symbols, and the rule for matching a model of one species to sets of another.

Human symbols (HGNC) are written in capitals (``ACTB``, ``C1orf112`` aside), mouse symbols (MGI)
with a capital first letter and lower-case rest (``Actb``, ``Gm12345``, ``1700001C19Rik``). Many
one-to-one orthologs share the symbol up to case, so a mouse model *can* be scored against
human sets by comparing symbols case-insensitively, but that is not an ortholog mapping: genes whose
symbols differ between the species (``CXCL8`` has no ``Cxcl8``; ``HLA-A`` vs ``H2-K1``) are lost,
and a few unrelated genes may coincide. topiceval therefore never matches across species silently:

* a collection from the MSigDB registry or a shipped one knows its species;
* ``load(..., species="mouse")`` declares the model's species; if it differs from the
  collection's, loading fails unless ``cross_species=True`` is given too, and then the rule
  (:data:`CROSS_SPECIES_RULE`) is recorded in the collection's config;
* without a declaration, :meth:`GeneSets.coverage` warns when the model's symbols look like the
  other species' (:func:`guess_species`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = ["CROSS_SPECIES_RULE", "SPECIES", "guess_species", "mouse_style_fraction"]

SPECIES: tuple[str, ...] = ("human", "mouse")

#: The documented cross-species rule, recorded in ``GeneSets.config()["species_match"]``.
CROSS_SPECIES_RULE = (
    "case-insensitive symbol match: symbols upper-cased on both sides, no ortholog mapping"
)

#: Above this fraction of mouse-style symbols a gene list is guessed to be mouse.
MOUSE_ABOVE = 0.5
#: Below this fraction it is guessed to be human; in between no guess is made.
HUMAN_BELOW = 0.05


def mouse_style_fraction(symbols: Iterable[str]) -> float:
    """Fraction of symbols with letters that contain a lower-case letter (mouse style).

    Human open-reading-frame names (``C1orf112``) are not counted as lower-case. Symbols without
    letters are ignored; ``nan`` when none has a letter.
    """
    text = pd.Series(list(symbols), dtype=object).astype(str).str.strip()
    text = text.str.replace(r"(?<=\d)orf(?=\d)", "ORF", regex=True)
    has_letter = text.str.contains(r"[A-Za-z]", regex=True)
    n = int(has_letter.sum())
    if n == 0:
        return float("nan")
    has_lower = text.str.contains(r"[a-z]", regex=True) & has_letter
    return float(has_lower.sum()) / n


def guess_species(symbols: Iterable[str]) -> str | None:
    """``"mouse"``, ``"human"`` or ``None`` (unclear) from the writing of the symbols.

    A guess, used only to warn; upper-cased mouse symbols read as human.
    """
    fraction = mouse_style_fraction(symbols)
    if fraction != fraction:  # nan
        return None
    if fraction > MOUSE_ABOVE:
        return "mouse"
    if fraction < HUMAN_BELOW:
        return "human"
    return None
