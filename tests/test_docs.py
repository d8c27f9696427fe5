"""The documentation's sources agree with the code: the generated CLI reference covers every
command, every plot is in the API reference, every page is reachable, and the README keeps the
commands CI runs. (The build itself, tutorials included, runs in .ci/run with warnings as errors.)"""

from __future__ import annotations

import argparse
import re
import sys

from topiceval import pl
from topiceval.cli import build_parser

from conftest import REPO

DOCS = REPO / "docs"


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ("topiceval",)) -> list[str]:
    found = [" ".join(words)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*words, name))
    return found


def test_cli_reference_lists_every_command_and_flag():
    sys.path.insert(0, str(DOCS))
    try:
        from _cli_reference import render
    finally:
        sys.path.remove(str(DOCS))
    page = render()
    commands = _commands(build_parser())
    assert {"topiceval score", "topiceval regress", "topiceval gene-sets fetch"} <= set(commands)
    titles = re.findall(r"^(topiceval[\w -]*)\n-+$", page, flags=re.M)
    assert titles == commands
    for flag in ("--ora-alpha", "--gsea-n-perm", "--write-baseline", "--cluster-resolutions"):
        assert flag in page


def test_every_plot_is_documented():
    api = (DOCS / "api.rst").read_text()
    guide = (DOCS / "plotting.md").read_text()
    for name in pl.__all__:
        assert f"topiceval.pl.{name}" in api, name
        assert f"pl.{name}" in guide, name


def test_every_page_is_in_a_toctree_and_the_readme_keeps_its_commands():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"\n{page.stem}\n" in index, page.name
    assert "\napi\n" in index and "\n_generated/cli\n" in index and "generated_tutorials/index" in index
    readme = (REPO / "README.md").read_text()
    lines = readme.splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith("<!-- test-command"))
    assert lines[marker + 2].endswith('pip install -e ".[test]" && pytest')
    assert 'pip install ".[demo]" && topiceval demo' in readme
    assert len(list((DOCS / "tutorials").glob("tutorial_*.py"))) == 3
