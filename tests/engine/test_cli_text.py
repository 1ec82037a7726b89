"""What a user reads on the command line: help that answers at once and lists every command, one sentence
for a busy port, and a training console free of third-party warnings and progress bars (they stay in
train.log)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from engine.config import parse_config
from tests.cli import MEMORISE, launch, write_config, write_rows

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_command_without_heavy_imports():
    from engine.__main__ import COMMANDS

    started = time.time()
    result = launch("--help", timeout=60)
    seconds = time.time() - started
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f"  {command} " in result.stdout, result.stdout
    assert "--workspace" in result.stdout and "--port" in result.stdout
    probe = ("import sys, runpy; sys.argv = ['launch.py', '--help']\n"
             "try:\n    runpy.run_path('launch.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "heavy = sorted(m for m in ('gradio', 'torch', 'transformers', 'peft') if m in sys.modules)\n"
             "print('HEAVY', heavy)")
    heavy = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in heavy.stdout, heavy.stdout + heavy.stderr
    assert seconds < 10, f"--help took {seconds:.1f} s"


def test_help_command_and_unknown_command():
    result = launch("help", timeout=60)
    assert result.returncode == 0 and "train" in result.stdout
    result = launch("help", "export", timeout=60)
    assert result.returncode == 0 and "--out" in result.stdout
    result = launch("bogus", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown command 'bogus'" in result.stderr


def test_sub_command_help_is_for_users():
    plan = launch("plan", "--help", timeout=120)
    assert plan.returncode == 0 and plan.stdout.startswith("usage: python launch.py plan")
    assert "table, not an if-chain" not in plan.stdout and "Count the parameters" in plan.stdout
    inspect = launch("inspect-data", "--help", timeout=120)
    assert inspect.returncode == 0 and inspect.stdout.startswith("usage: python launch.py inspect-data")
    chat = launch("chat", "--help", timeout=120)
    assert chat.returncode == 0
    options = chat.stdout.split("options:", 1)[1]
    for option in ("--max-new-tokens", "--temperature", "--top-p", "--top-k", "--repetition-penalty", "--seed",
                   "--system", "--bits", "--model"):
        entry = options.split(option, 1)[1].split("\n  -", 1)[0]
        assert len(entry.split()) > 2, f"{option} has no help: {entry!r}"


def test_busy_port_is_one_sentence():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = launch("--port", str(port), "--workspace", "/tmp/wb-busy-port-test", timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "already in use" in lines[0] and "--port" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_training_console_has_no_library_chatter(tiny_model: Path, tmp_path: Path):
    data = write_rows(tmp_path / "rows.json", MEMORISE)
    config = write_config(tmp_path / "c.yaml", tiny_model, data, tmp_path / "run", method={"name": "qlora"},
                          train={"max_steps": 1})
    result = launch("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    console = result.stdout + result.stderr
    for chatter in ("Warning", "WARNING", "warnings.warn", "Loading weights", "it/s]", "%|"):
        assert chatter not in console, console
    assert "step 1/1" in result.stdout
    log = (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    assert "FutureWarning" in log  # kept where a developer can find it


def test_readme_minimal_config_names_files_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"A minimal config.*?```yaml\n(.*?)```", readme, re.S).group(1)
    config = parse_config(yaml.safe_load(block), base_dir=ROOT, source="README.md")
    assert Path(config.model.name_or_path).is_dir(), config.model.name_or_path
    assert Path(config.data.path).is_file(), config.data.path
    assert "**Start training**" in readme
    assert json.loads((ROOT / "assets" / "locales" / "en.json").read_text(encoding="utf-8"))["train.start"] == \
        "Start training"
