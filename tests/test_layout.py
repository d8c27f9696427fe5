"""Packaging: the top-level folders install under ``topiceval.*``, both as a wheel and editable.

Each install goes into a fresh virtual environment whose dependencies come from the running one
(through a folder of links that leaves out any installed topiceval), built offline without build
isolation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import importlib, importlib.util, sys
from pathlib import Path
import topiceval, topiceval.models, topiceval.adapters, topiceval.gene_sets, topiceval.metrics
for generic in ("models", "adapters", "gene_sets"):
    assert importlib.util.find_spec(generic) is None, f"{generic} is importable at top level"
assert "torch" not in sys.modules, "import topiceval imported torch"
root = Path(topiceval.__file__).resolve().parent
print(root)
print(Path(topiceval.models.__file__).resolve().parent)
print(Path(topiceval.gene_sets.__file__).resolve().parent)
print(len(topiceval.gene_sets.load("hallmark")))
from topiceval.examples import EXAMPLES
print(EXAMPLES["yan_nmf"].topic_gene.exists())
from topiceval.datasets import DEFAULT
print((Path(topiceval.__file__).resolve().parent / "datasets" / DEFAULT.files[0]).exists())
"""


def listed_packages() -> set[str]:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed():
    mapping = {"topiceval": "topiceval", "models": "topiceval.models",
               "adapters": "topiceval.adapters", "gene_sets": "topiceval.gene_sets"}
    found = set()
    for folder, package in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == listed_packages()


def make_env(tmp_path: Path) -> Path:
    """A fresh venv seeing the running environment's packages except topiceval."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    deps = tmp_path / "deps"
    deps.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        lowered = entry.name.lower()
        if lowered.startswith(("topiceval", "__editable__")) or entry.suffix == ".pth":
            continue
        os.symlink(entry, deps / entry.name)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(site, "_deps.pth").write_text(str(deps) + "\n")
    return python


def pip_install(python: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", *args],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def copy_repo(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".venv", ".pytest_cache", ".benchmarks", ".hypothesis")
    shutil.copytree(REPO, source, ignore=ignore)
    return source


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_install_imports_under_topiceval(tmp_path, editable):
    source = copy_repo(tmp_path)
    python = make_env(tmp_path)
    pip_install(python, *(["-e"] if editable else []), str(source))
    result = subprocess.run(
        [str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    root, models, gene_sets, n_hallmark, example, default_data = result.stdout.split()
    if editable:
        assert (Path(root), Path(models), Path(gene_sets)) == (source / "topiceval", source / "models", source / "gene_sets")
    else:
        assert Path(models) == Path(root) / "models" and Path(gene_sets) == Path(root) / "gene_sets"
        assert "site-packages" in root
    assert n_hallmark == "50" and example == "True" and default_data == "True"


def test_import_does_not_load_heavy_libraries():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, topiceval, topiceval.cli; "
         "print(sorted(m for m in ('torch', 'gseapy', 'scanpy', 'scvi', 'anndata') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == "[]"
