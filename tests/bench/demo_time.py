"""The first run's time, measured two ways on the same config (assets/demo.yaml, the page's starting form):

  cli   `python launch.py train CONFIG` from start to exit (what the README's first-run command does);
  page  a fresh `launch.py` server, a headless Chromium visitor opening the page and pressing
        Start training with the form untouched, until the page shows `completed`.

For each it prints the wall time the user waits and the run's own metrics.json figures (wall_s: from the engine's
start to its saved adapter; train_s: the training loop), so the two can be compared part by part.

    .venv/bin/python tests/bench/demo_time.py [--only cli|page]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402
from tests.cli import engine_env  # noqa: E402


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def time_cli(workspace: Path) -> dict:
    from webui.forms import mapping as forms

    starter = forms.starter_config(ROOT / "assets")
    run = workspace / "runs" / "demo-cli"
    config = forms.to_config(forms.from_config(starter), model=starter.model.name_or_path,
                             data_path=starter.data.path, method=starter.method.name, output_dir=str(run))
    path = workspace / "demo-cli.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    started = time.time()
    done = subprocess.run([sys.executable, "launch.py", "train", str(path)], cwd=ROOT, env=engine_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"waited_s": time.time() - started, **metrics(run)}


def time_page(workspace: Path) -> dict:
    from playwright import sync_api

    proc, url = start_server(workspace, "server-demo-time.log")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(900_000)
            page.goto(url)
            page.wait_for_selector("#wb-data-summary:has-text('40')")  # the form is ready as a user sees it
            page.wait_for_selector("#wb-trainable:has-text('%')")
            started = time.time()
            page.click("#wb-start")
            page.wait_for_selector("#wb-progress [data-state='completed']")
            waited = time.time() - started
            name = page.locator("#wb-progress b").first.inner_text()
            browser.close()
    finally:
        stop_server(proc)
    return {"waited_s": waited, **metrics(workspace / "runs" / name)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("cli", "page"), help="measure one of the two")
    args = parser.parse_args()
    rows = {}
    for way, measure in (("cli", time_cli), ("page", time_page)):
        if args.only in (None, way):
            rows[way] = measure(Path(tempfile.mkdtemp(prefix=f"demo-{way}-")))
    print("| way | user waits (s) | engine wall_s | train_s | steps | train loss |")
    print("|---|---|---|---|---|---|")
    for way, m in rows.items():
        print(f"| {way} | {m['waited_s']:.1f} | {m['wall_s']:.1f} | {m['train_s']:.1f} | {m['steps']} | "
              f"{m['train_loss']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
