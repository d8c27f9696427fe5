"""Screenshot an HTML report in headless Chromium at the widths people use.

    python scripts/screenshot_report.py reports/demo/index.html --out screenshots/
    python scripts/screenshot_report.py reports/leaderboard --widths 390,768,1280,1920 --height 4000

Writes ``<out>/<name>-<width>px.png`` for every width (default: 390 a phone, 768 a tablet, 1280 a
laptop, 1920 a desktop monitor) and prints the paths; look at them to check that tables, plots and
warnings read well. The page is loaded from disk (the report is self-contained: no network).

Chromium: the first of ``$CHROMIUM``, ``chromium``, ``chromium-browser``, ``google-chrome`` found
on ``PATH`` (Debian / Ubuntu: ``apt-get install -y chromium``). It runs with its own throw-away
profile, without sandbox (containers), GPU, first-run or background networking.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_WIDTHS = (390, 768, 1280, 1920)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """Path of a Chromium executable, or exit with a message saying how to install one."""
    for name in filter(None, (os.environ.get("CHROMIUM"), *CANDIDATES)):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("screenshot_report: no Chromium found (set $CHROMIUM, or apt-get install -y chromium)")


def screenshot(page: Path, out: Path, width: int, height: int, chromium: str, timeout: float = 120.0) -> Path:
    """One PNG of ``page`` rendered ``width`` CSS pixels wide (window ``width x height``)."""
    target = out / f"{page.parent.name or 'report'}-{width}px.png"
    with tempfile.TemporaryDirectory(prefix="topiceval-chromium-") as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "--virtual-time-budget=5000",
            f"--screenshot={target}", page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not target.is_file():
        sys.exit(f"screenshot_report: chromium failed for width {width} (exit {done.returncode}): "
                 f"{done.stderr.strip().splitlines()[-1:] or ''}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="index.html, or the report folder that holds it")
    parser.add_argument("--out", default="screenshots", help="folder for the PNGs (default screenshots/)")
    parser.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)),
                        help="comma-separated window widths in CSS pixels (default 390,768,1280,1920)")
    parser.add_argument("--height", type=int, default=3000, help="window height in CSS pixels (default 3000)")
    args = parser.parse_args(argv)
    page = Path(args.report)
    if page.is_dir():
        page = page / "index.html"
    if not page.is_file():
        sys.exit(f"screenshot_report: {page} not found")
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chromium = find_chromium()
    for width in widths:
        print(screenshot(page, out, width, args.height, chromium))
    return 0


if __name__ == "__main__":
    sys.exit(main())
