"""Cut the test suite's real data ``tests/data/shared/`` from the shared data folder (deterministic).

    python scripts/make_test_data.py [--shared ../shared/data] [--check]

The suite runs from a clone alone: ``tests/conftest.py`` rebuilds, in a temporary folder, a folder
with the layout of ``shared/data`` from the files written here, and the ``shared_data`` fixture
points at it. Every file keeps its name and layout; what each holds is listed in :data:`FILES`
and in the ``MANIFEST.md`` written beside the files:

* text files (GMT collections, the Yan table, the Wang embedding) whole, xz-compressed
  (``NAME.xz``; conftest decompresses them to ``NAME``);
* the small labels files and ``kang_pbmc.h5ad`` whole, as they are;
* ``pollen``, ``darmanis`` and ``ting``: every cell and every third gene (``X[:, ::3]``, so
  the cut covers the whole alphabet of symbols), raw counts, ``obs`` and gene order unchanged,
  written with gzip level 9.

The Hallmark, Reactome and mouse Hallmark collections are not copied: the package ships them
(``gene_sets/*.gmt.gz``) and conftest decompresses those. The outputs are the same bytes on every
run (xz and h5py write no timestamps); ``--check`` rebuilds into a temporary folder and compares
every file's SHA-256 with the shipped one instead of writing.

Tests that need what only the whole folder holds (the registry's documented shapes, Pollen's
every gene) ask for the ``full_shared_data`` fixture instead: marked ``full_data``, they are
skipped, with the reason, where ``../shared/data`` is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "shared"

#: file (relative to the shared folder) -> how it is cut: "xz" (whole, compressed), "copy" (whole,
#: as it is) or "genes::3" (every cell, every third gene).
FILES = {
    "gene_sets/c2.all.v7.1.symbols.gmt": "xz",
    "gene_sets/enrichr.GO_Biological_Process_2023.gmt": "xz",
    "datasets/yan/yan_HIGHPRE.csv": "xz",
    "datasets/yan/yan_cell_anno.csv": "copy",
    "datasets/wang/wang_scgpt_embedding.csv": "xz",
    "datasets/wang/wang_cell_anno.csv": "copy",
    "datasets/kang_pbmc/kang_pbmc.h5ad": "copy",
    "datasets/pollen/pollen.h5ad": "genes::3",
    "datasets/darmanis/darmanis.h5ad": "genes::3",
    "datasets/ting/ting.h5ad": "genes::3",
}

HOW = {
    "xz": "whole file, xz-compressed (preset 9)",
    "copy": "whole file, unchanged",
    "genes::3": "every cell, every third gene (`X[:, ::3]`), counts and obs unchanged, gzip 9",
}


def shipped_name(rel: str) -> str:
    """The name under ``tests/data/shared`` of the cut of shared file ``rel``."""
    return rel + ".xz" if FILES[rel] == "xz" else rel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cut(source: Path, target: Path, how: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if how == "xz":
        target.write_bytes(lzma.compress(source.read_bytes(), preset=9))
    elif how == "copy":
        shutil.copyfile(source, target)
    elif how == "genes::3":
        import anndata

        adata = anndata.read_h5ad(source)
        adata[:, ::3].copy().write_h5ad(target, compression="gzip", compression_opts=9)
    else:  # pragma: no cover
        raise ValueError(how)


def describe(path: Path, how: str) -> str:
    if not path.name.endswith(".h5ad"):
        return ""
    import anndata

    adata = anndata.read_h5ad(path, backed="r")
    try:
        return f"{adata.n_obs} x {adata.n_vars}"
    finally:
        adata.file.close()


def build(shared: Path, out: Path) -> None:
    """Write every file of :data:`FILES` and ``MANIFEST.md`` under ``out``."""
    missing = [rel for rel in FILES if not (shared / rel).is_file()]
    if missing:
        raise SystemExit(f"{shared}: not the shared data folder (missing {', '.join(missing)})")
    rows = []
    for rel, how in FILES.items():
        target = out / shipped_name(rel)
        cut(shared / rel, target, how)
        rows.append(
            f"| {shipped_name(rel)} | {HOW[how]} | {describe(shared / rel, how) or '-'} | "
            f"{describe(target, how) or '-'} | {target.stat().st_size:,} | `{sha256(shared / rel)[:16]}` |"
        )
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    (out / "MANIFEST.md").write_text(
        "# tests/data/shared: the real data the test suite reads\n\n"
        "Written by `python scripts/make_test_data.py` from the project's shared data folder "
        "(`../shared/data`; its MANIFEST.md gives each file's source and licence). "
        "`tests/conftest.py` rebuilds the shared folder's layout from these files "
        "(decompressing `.xz`, adding the Hallmark and Reactome collections the package ships).\n\n"
        "| file | cut | source shape | shipped shape | bytes | source sha256 |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + f"\n\nTotal: {total:,} bytes with this file.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=REPO.parent / "shared" / "data", type=Path)
    parser.add_argument("--check", action="store_true", help="rebuild into a temporary folder and compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=OUT.parent if OUT.parent.is_dir() else None) as tmp:
        staged = Path(tmp) / "shared"
        build(args.shared, staged)
        if args.check:
            names = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
            shipped = sorted(str(p.relative_to(OUT)) for p in OUT.rglob("*") if p.is_file()) if OUT.is_dir() else []
            differ = [n for n in names if n not in shipped or sha256(staged / n) != sha256(OUT / n)]
            extra = [n for n in shipped if n not in names]
            for n in differ:
                print(f"DIFFERS: {n}")
            for n in extra:
                print(f"NOT MADE BY THIS SCRIPT: {n}")
            print(f"{OUT}: {'identical' if not differ and not extra else 'DIFFERS'} ({len(names)} files)")
            sys.exit(1 if differ or extra else 0)
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.move(str(staged), OUT)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
