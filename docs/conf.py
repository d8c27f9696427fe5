"""Sphinx configuration of the topiceval documentation (``sphinx-build -W docs docs/_build/html``).

The CLI reference is generated from the argparse parser at build time (``_generated/cli.rst``);
the tutorials under ``tutorials/`` are executed by sphinx-gallery on every build, so a broken
example fails the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(name, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import topiceval  # noqa: E402

project = "topiceval"
author = "topiceval developers"
copyright = "topiceval developers"  # noqa: A001
release = version = topiceval.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "_cli_reference",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "tutorials"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections say the types
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()
suppress_warnings = ["myst.header"]

sphinx_gallery_conf = {
    "examples_dirs": "tutorials",
    "gallery_dirs": "generated_tutorials",
    "filename_pattern": r"/tutorial_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1,
}

html_theme = "alabaster"
html_title = f"topiceval {release}"
html_static_path: list[str] = []
html_theme_options = {"description": "Interpretability metrics for single-cell topic models",
                      "page_width": "1100px", "sidebar_width": "230px"}
