"""Shared pieces of the browser tests (headless Chromium from Debian, driven by Playwright): starting a server on
a fresh workspace, opening a page, and small helpers to drive gradio widgets.

The fixtures `server`, `browser` and `page` are in tests/browser/conftest.py: a test names them as parameters
without importing them, and marks itself `pytestmark = pytest.mark.browser`. `make_run` trains a short run into a
workspace through the command line, for tests that need a finished run without clicking through the Train tab."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOTS = ROOT / "assets" / "screenshots"
DEMO_MODEL = ROOT / "assets" / "models" / "workbench-demo-5m"
IDENTITY = ROOT / "assets" / "datasets" / "identity_alpaca.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]

# No skipping: a browser test that quietly does not run would count as passing. tests/run.sh installs both.
if not Path(CHROMIUM).exists():
    pytest.fail("Chromium is not installed: run `bash tests/run.sh`, or `apt-get install chromium`.", pytrace=False)
from playwright import sync_api  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: Path, log_name: str = "server.log", attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """`python launch.py --workspace WORKSPACE` on a free port; returns (process, url) once it answers. The port is
    free when asked for but not held: a process of another pytest worker can take it first, then another is tried
    (as when Gradio, on a busy machine, could not reach its own URL in time)."""
    for _ in range(attempts - 1):
        try:
            return start_server_once(workspace, log_name)
        except PortTaken:
            continue
    return start_server_once(workspace, log_name)


class PortTaken(AssertionError):
    pass


def start_server_once(workspace: Path, log_name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / log_name, "a")  # noqa: SIM115 (the process keeps it)
    logged = log.tell()  # the log is appended to: this server's lines start here
    proc = subprocess.Popen([sys.executable, "launch.py", "--workspace", str(workspace), "--port", str(port)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                said = (ARTIFACTS / log_name).read_bytes()[logged:].decode(errors="replace")
                taken = f"port {port} on" in said and "already in use" in said
                # Gradio's launch gives up, saying localhost is not accessible, when a request to its own URL takes
                # over 3 s (gradio.networking.url_ok), as on a busy machine: started again, as for a taken port
                busy = "When localhost is not accessible" in said
                raise (PortTaken if taken or busy else AssertionError)(said) from None
            time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"the server did not answer within 120 s: see {ARTIFACTS / log_name}")


def share_engine_answers(workspace: Path, answers: Path) -> None:
    """WORKSPACE's engine answers (WORKSPACE/.cache/engine) are the folder `answers` (the fixture engine_answers)."""
    (workspace / ".cache").mkdir(parents=True, exist_ok=True)
    (workspace / ".cache" / "engine").symlink_to(answers, target_is_directory=True)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def open_page(browser, url: str, locale: str = "en-US"):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale=locale)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#wb-start")
    return page


def shot(page, name: str, readme: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if readme:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{readme}.png"), full_page=True)


def pick(page, selector: str, value: str) -> None:
    """Choose `value` in a gradio Dropdown (typing filters the options; the option is then clicked)."""
    box = page.locator(f"{selector} input")
    box.click()
    box.fill(value)
    page.locator("[role=option]", has_text=value).first.click()


def set_number(page, elem_id: str, value: str, attempts: int = 3) -> None:
    """Type a number into a gradio Number or Slider box. A slider takes the typed number on blur, and a page
    still hydrating can drop it: the number is typed again until the slider holds it."""
    field = page.locator(f"#{elem_id} input[type=number]").first
    slider = page.locator(f"#{elem_id} input[type=range]")
    for _ in range(attempts):
        field.fill(value)
        field.press("Tab")
        if not slider.count():
            return
        try:
            page.wait_for_function("([id, value]) => Number(document.querySelector(`#${id} input[type=range]`).value)"
                                   " === value", arg=[elem_id, float(value)], timeout=10_000)
            return
        except sync_api.TimeoutError:
            continue


def make_run(workspace: Path, name: str, *, steps: int = 40, method: dict | None = None,
             data: Path = IDENTITY, model: Path = DEMO_MODEL, timeout: float = 600) -> Path:
    """Train `name` into WORKSPACE/runs/ with `launch.py train` (as a user pasting the page's command would)."""
    run = workspace / "runs" / name
    config = {
        "model": {"name_or_path": str(model)},
        "method": {"name": "lora", "r": 16, "lora_alpha": 32, "target_modules": "all-linear", **(method or {})},
        "data": {"path": str(data)},
        "train": {"max_steps": steps, "learning_rate": 5.0e-3, "batch_size": 4, "cutoff_len": 256,
                  "save_steps": 1000},
        "output_dir": str(run),
    }
    config_path = workspace / "configs" / f"{name}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run([sys.executable, "launch.py", "train", str(config_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    return run


# The config preview's editor (CodeMirror) draws only the lines near the window: the check brings the
# editor's middle into view before it reads the drawn text.
YAML_HAS = """([texts]) => {
    const view = document.querySelector('#wb-yaml');
    if (!view) return false;
    view.scrollIntoView({block: 'center'});
    return texts.every(text => view.innerText.includes(text));
}"""


def wait_for_yaml(page, *texts: str, timeout: float = 60_000) -> None:
    """Waits until the config preview shows every one of texts."""
    page.wait_for_function(YAML_HAS, arg=[list(texts)], timeout=timeout)


def chart_lines(chart: str) -> str:
    """A page function returning the loss chart at `chart` as drawn: one entry per Vega line mark (its stroke
    colour and how many points it joins) and the legend's labels. A series outside the chart's colour domain is
    drawn with no stroke: invisible."""
    return """() => {
    const chart = document.querySelector('SELECTOR .vega-embed');
    if (!chart) return {lines: [], legend: []};
    const lines = [...chart.querySelectorAll('g.mark-line path')].map(path => ({
        stroke: path.getAttribute('stroke'), points: (path.getAttribute('d') || '').split(/[LM]/).length - 1}));
    const legend = [...chart.querySelectorAll('g.role-legend-label text')].map(text => text.textContent);
    return {lines, legend};
}""".replace("SELECTOR", chart)
