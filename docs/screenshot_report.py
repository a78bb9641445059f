"""Regenerate docs/report.png, the README's picture of the deployment-health report, with the
project's own commands: `modelarts-etl run` on the simulator's demo data (20 services, the 7 days
before today, seed 42) into a fresh embedded Postgres, `modelarts-etl report` over those days,
then a screenshot of the page in headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM).

    .venv/bin/python docs/screenshot_report.py [--out docs/report.png] [--keep DIR]

Nothing is downloaded; the temporary data directory is removed unless --keep names one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.report.browser import CHROMIUM_FLAGS, find_chromium

REPO = Path(__file__).resolve().parents[1]


def _cli(args: list[str], workdir: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"modelarts-etl {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _screenshot(html: Path, png: Path, height: int) -> None:
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        sys.exit("no Chromium: apt-get install -y chromium (or set CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.goto(html.as_uri(), wait_until="load")
            page.screenshot(path=str(png), full_page=False)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report.png")
    parser.add_argument("--height", type=int, default=2000, help="pixels of the page shown")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="report-screenshot-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELARTS_", "HUAWEICLOUD_", "DATABASE_URL", "DAGSTER_"))
    }
    env["PIPELINES_DATA_DIR"] = str(workdir / "data")
    env["PYTHONPATH"] = str(REPO)
    try:
        print(_cli(["run"], workdir, env).splitlines()[0])
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        first = yesterday - timedelta(days=6)
        html = workdir / "deployment-report.html"
        report = ["report", "--start", str(first), "--end", str(yesterday), "--out", str(html)]
        print(_cli(report, workdir, env))
        _screenshot(html, args.out, args.height)
        print(f"wrote {args.out}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
