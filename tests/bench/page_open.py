"""How long a visitor waits after opening the page: seconds from navigation to the Train tab's dataset
summary and to its trainable-parameter count, for a first visitor and a second one; and the CPU the opening took,
until both show: the server's (with the engine processes it waited for) and Chromium's (every process of the
browser, the page's renderer most of it). The CPU figures hold better than the seconds on a busy machine.

    .venv/bin/python tests/bench/page_open.py                 # a fresh workspace, then a second visitor
    .venv/bin/python tests/bench/page_open.py --workspace DIR # an existing workspace (its cache too)

Starts `launch.py` (HF_HUB_OFFLINE=1) on a free port and drives headless Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

SUMMARY = "/\\d+ rows/.test(document.querySelector('#wb-data-summary')?.innerText || '')"
COUNT = "/trainable.*\\d%/.test(document.querySelector('#wb-trainable')?.innerText || '')"
# Polls in the page every 50 ms and keeps the first time (ms since navigation started) each condition held.
WATCH = f"""() => {{ window.__seen = {{}}; const checks = {{summary: () => {SUMMARY}, trainable: () => {COUNT}}};
    const tick = () => {{ for (const [name, check] of Object.entries(checks))
        if (!(name in window.__seen) && check()) window.__seen[name] = performance.now(); }};
    tick(); setInterval(tick, 50); }}"""


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def browser_cpu() -> dict[int, float]:
    """CPU seconds of each Chromium process now (those of this script's Playwright driver)."""
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if "chrom" in process.name():
                times = process.cpu_times()
                found[process.pid] = times.user + times.system
        except psutil.Error:
            continue
    return found


def visit(browser, url: str, server: psutil.Process) -> dict[str, float]:
    """Seconds from navigation to the start button, to the dataset summary and to the trainable count; CPU seconds
    of the server and of Chromium from navigation until both show (and a second more for the answers in flight)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.add_init_script(f"document.addEventListener('DOMContentLoaded', {WATCH})")
    server_before, browser_before = cpu_seconds(server), browser_cpu()
    page.goto(url)
    page.wait_for_selector("#wb-start")
    times = {"page": page.evaluate("performance.now()") / 1000}
    page.wait_for_function("() => window.__seen && 'summary' in window.__seen && 'trainable' in window.__seen",
                           polling=100)
    times.update({name: ms / 1000 for name, ms in page.evaluate("window.__seen").items()})
    time.sleep(1)
    times["server_cpu"] = cpu_seconds(server) - server_before
    times["browser_cpu"] = sum(cpu - browser_before.get(pid, 0.0) for pid, cpu in browser_cpu().items())
    context.close()
    return times


def main() -> int:
    from playwright import sync_api

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="workspace to serve (default: a fresh temporary one)")
    parser.add_argument("--visitors", type=int, default=2, help="visitors one after the other (default 2)")
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="page-open-"))
    proc, url = start_server(workspace, "server-page-open.log")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for n in range(1, args.visitors + 1):
                times = visit(browser, url, psutil.Process(proc.pid))
                print(f"visitor {n}: page {times['page']:.1f} s, dataset summary {times['summary']:.1f} s, "
                      f"trainable count {times['trainable']:.1f} s; CPU: server {times['server_cpu']:.1f} s, "
                      f"Chromium {times['browser_cpu']:.1f} s", flush=True)
            browser.close()
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
