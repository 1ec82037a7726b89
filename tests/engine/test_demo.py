"""First run offline: the page's starting form (bundled demo model, identity set, LoRA) trains within
3 minutes on the CPU, and then greedy chat with the adapter gives the trained answer to at least 80% of
the identity questions while the base model gives it to none. Same code path as the page: the form's
values -> webui.forms.mapping.to_config -> `launch.py train` -> engine.chat.session.ChatSession (the chat worker's
code)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from engine.chat.session import ChatSession
from engine.jobs.events import final_status, read_events
from engine.jobs.rundir import RunDir
from tests.cli import launch
from webui.forms import mapping as forms

ASSETS = Path(__file__).resolve().parents[2] / "assets"
TRAIN_BUDGET_S = 180  # the promise for 2 CPU cores
# The budget is wall-clock time on 2 cores: tests/run.sh runs this module after the others, alone on the machine
# (and the adapter test with it, so that the run is trained once).
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, float]:
    starter = forms.starter_config(ASSETS)
    assert starter is not None, "assets/demo.yaml or the demo model it names is missing"
    run = RunDir(tmp_path_factory.mktemp("demo") / "run")
    # what the page does when Start is pressed with the form untouched
    config = forms.to_config(forms.from_config(starter), model=starter.model.name_or_path,
                             data_path=starter.data.path, method=starter.method.name, output_dir=str(run.path))
    config_path = run.path.parent / "config.yaml"
    config_path.write_text(config.to_yaml(), encoding="utf-8")
    started = time.time()
    result = launch("train", str(config_path), timeout=900)
    seconds = time.time() - started
    assert result.returncode == 0, result.stderr[-2000:]
    return run, seconds


@pytest.mark.slow
def test_demo_defaults_train_within_budget(demo_run):
    run, seconds = demo_run
    assert final_status(read_events(run.events)).state == "completed"
    print(f"demo run: {seconds:.0f} s end to end, {run.read_metrics()['train_s']:.0f} s training")
    assert seconds < TRAIN_BUDGET_S


@pytest.mark.slow
def test_adapter_answers_the_identity_questions_and_the_base_does_not(demo_run):
    run, _ = demo_run
    rows = json.loads((ASSETS / "datasets" / "identity_alpaca.json").read_text(encoding="utf-8"))
    session = ChatSession()
    session.load(None, {"demo": str(run.path)})

    def answers(question: str, adapter: str | None, expected: str) -> bool:
        """Whether the greedy reply (128 new tokens at most) is `expected`, stripped. The generation is cancelled
        (the chat's own cancel: next token) once its text rules that out, which decides the same as the whole
        reply: text only grows, so a reply whose stripped start is neither a start of `expected` nor `expected`
        followed by whitespace never becomes it. The base model's 128-token replies were most of this test's time."""
        expected, text, cancel = expected.strip(), "", threading.Event()
        for chunk in session.generate([{"role": "user", "content": question}], adapter, max_new_tokens=128,
                                      temperature=0.0, cancel=cancel):
            text += chunk
            start = text.lstrip()
            if not (expected.startswith(start) or (start.startswith(expected) and not start[len(expected):].strip())):
                cancel.set()
        return text.strip() == expected

    tuned = [answers(row["instruction"], "demo", row["output"]) for row in rows]
    base = [answers(row["instruction"], None, row["output"]) for row in rows]
    print(f"identity answers: adapter {sum(tuned)}/{len(rows)}, base {sum(base)}/{len(rows)}")
    assert sum(tuned) >= 0.8 * len(rows)
    assert sum(base) == 0
