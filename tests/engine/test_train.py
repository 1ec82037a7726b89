"""Headless training through `python launch.py train` (in a process of its own, or in this one through the function
it calls: tests.cli.train_in_process), on a tiny real Llama built by the test."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import pytest
import torch

from engine.jobs.events import Metrics, Progress, Status, final_status, read_events
from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, launch, popen_launch, train_in_process, write_config, write_rows

METHOD_OPTIONS = {
    "lora": {},
    "dora": {},
    "qlora": {},
    "prefix": {"num_virtual_tokens": 4},
    "prompt": {"num_virtual_tokens": 4, "prompt_tuning_init": "text", "prompt_tuning_init_text": "Answer:"},
    "ptuning": {"num_virtual_tokens": 4},
    "ia3": {},
    "full": {},
    "freeze": {"freeze_trainable_layers": 1},
}


@pytest.fixture(scope="module")
def memorise_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rows(tmp_path_factory.mktemp("data") / "memorise.json", MEMORISE)


def load_trained(run: RunDir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if run.adapter.is_dir():
        config = json.loads((run.adapter / "adapter_config.json").read_text())
        base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
        return PeftModel.from_pretrained(base, run.adapter), AutoTokenizer.from_pretrained(run.adapter)
    return AutoModelForCausalLM.from_pretrained(run.model), AutoTokenizer.from_pretrained(run.model)


@pytest.fixture(scope="module")
def method_runs(tiny_model, memorise_data, tmp_path_factory):
    """method_runs(method, seed) -> (run, what `launch.py train` returned) of a 2-step run of that method and seed,
    trained in this process (tests.cli.train_in_process) once per module: test_every_method's runs are also the seed
    test's runs trained in another process than the first."""
    done: dict[tuple[str, int], tuple[RunDir, object]] = {}

    def trained(method: str, seed: int = 42):
        if (method, seed) not in done:
            folder = tmp_path_factory.mktemp(f"{method}-{seed}")
            config = write_config(folder / "run.yaml", tiny_model, memorise_data, folder / "run",
                                  method={"name": method, **METHOD_OPTIONS[method]}, train={"seed": seed})
            done[method, seed] = RunDir(folder / "run"), train_in_process(str(config))
        return done[method, seed]

    return trained


@pytest.mark.parametrize("method", list(METHOD_OPTIONS))
def test_every_method_trains_loads_and_generates(method, method_runs):
    run, result = method_runs(method)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "step 2/2" in result.stdout  # one progress line per logging step

    assert final_status(read_events(run.events)).state == "completed"
    metrics = run.read_metrics()
    assert 0 < metrics["trainable_params"] <= metrics["total_params"]
    if method in ("lora", "dora", "qlora", "prefix", "prompt", "ptuning", "ia3"):
        assert {"adapter_config.json", "adapter_model.safetensors", "chat_template.jinja"} <= {
            p.name for p in run.adapter.iterdir()}
        assert metrics["trainable_percent"] < 50
    else:
        assert (run.model / "config.json").is_file()

    model, tokenizer = load_trained(run)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Who are you?"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 4


@pytest.mark.parametrize("method", ["lora", "ptuning"])
def test_the_same_config_trains_the_same_weights_and_another_seed_does_not(method, tiny_model, memorise_data,
                                                                           method_runs, tmp_path):
    """The adapter's initial weights (LoRA's A, P-tuning's prompt encoder) are drawn from train.seed: a config
    trained twice, once by `launch.py train` and once in another process (this one), gives identical weights, and
    another seed different ones."""
    from safetensors.torch import load_file

    config = write_config(tmp_path / "first.yaml", tiny_model, memorise_data, tmp_path / "first",
                          method={"name": method, **METHOD_OPTIONS[method]}, train={"seed": 42})
    result = launch("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    first = load_file(RunDir(tmp_path / "first").adapter / "adapter_model.safetensors")

    def trained(seed: int) -> dict[str, torch.Tensor]:
        run, result = method_runs(method, seed)
        assert result.returncode == 0, result.stderr[-2000:]
        return load_file(run.adapter / "adapter_model.safetensors")

    again, other = trained(42), trained(7)
    assert first.keys() == again.keys() == other.keys() and first
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def losses(run: RunDir) -> list[float]:
    return [e.loss for e in read_events(run.events) if isinstance(e, Metrics) and e.loss is not None]


@pytest.mark.parametrize("method, options, learning_rate", [
    ("lora", {"r": 16, "lora_alpha": 32}, 1e-2),
    ("qlora", {"r": 16, "lora_alpha": 32}, 1e-2),
    ("prefix", {"num_virtual_tokens": 8}, 3e-2),
])
def test_loss_halves_on_a_memorisation_set(method, options, learning_rate, memorise_model, memorise_data,
                                          tmp_path):
    config = write_config(tmp_path / "run.yaml", memorise_model, memorise_data, tmp_path / "run",
                          method={"name": method, "lora_dropout": 0.0, **options},
                          train={"max_steps": 40, "batch_size": 4, "learning_rate": learning_rate,
                                 "lr_scheduler_type": "constant"})
    result = train_in_process(str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    curve = losses(RunDir(tmp_path / "run"))
    assert len(curve) == 40
    assert curve[-1] < curve[0] / 2, curve


def test_sigterm_stops_and_saves_then_resume_continues(tiny_model, memorise_data, tmp_path):
    run = RunDir(tmp_path / "run")
    total = 60
    config = write_config(tmp_path / "run.yaml", tiny_model, memorise_data, run.path,
                          train={"max_steps": total, "batch_size": 1, "save_steps": 1000,
                                 "lr_scheduler_type": "linear", "learning_rate": 1e-3})
    process = popen_launch("train", str(config))
    deadline = time.time() + 120
    while time.time() < deadline and not any(isinstance(e, Progress) and e.step >= 3
                                              for e in read_events(run.events)):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]

    events = read_events(run.events)
    assert final_status(events).state == "stopped"
    stopped_at = final_status(events).step
    assert 3 <= stopped_at < total
    assert run.last_checkpoint().name == f"checkpoint-{stopped_at}"
    load_trained(run)  # the adapter so far is loadable

    result = train_in_process("--resume", str(run.path))  # in this process: the stop above was the other's
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = read_events(run.events)[len(events):]
    steps = [e.step for e in resumed if isinstance(e, Progress)]
    assert steps[0] == stopped_at + 1 and steps[-1] == total
    assert all(e.total == total for e in resumed if isinstance(e, Progress))
    first_lr = next(e.learning_rate for e in resumed if isinstance(e, Metrics) and e.loss is not None)
    # linear decay with no warmup: the schedule carries on where it stopped, not from the start
    assert first_lr == pytest.approx(1e-3 * (total - stopped_at) / total, rel=1e-3)
    assert final_status(read_events(run.events)).state == "completed"


def test_unknown_config_key_and_every_problem_are_reported_at_once(tiny_model, memorise_data, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {{name_or_path: {tiny_model}}}\n"
        f"method: {{name: loraa, rank: 8}}\n"
        f"data: {{path: {memorise_data}}}\n"
        "train: {learning_rate: -1}\n"
        f"output_dir: {tmp_path / 'run'}\n"
    )
    result = launch("train", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1  # one line
    for fragment in ("method.name", "Unknown key 'method.rank'", "train.learning_rate"):
        assert fragment in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_model_that_does_not_exist_is_one_sentence(memorise_data, tmp_path):
    config = write_config(tmp_path / "run.yaml", Path("no-such-org/no-such-model"), memorise_data, tmp_path / "run")
    result = launch("train", str(config))
    assert result.returncode == 1
    assert "Model 'no-such-org/no-such-model' could not be loaded" in result.stderr
    assert "Traceback" not in result.stderr
    assert final_status(read_events(RunDir(tmp_path / "run").events)).state == "failed"


BAD_FILES = {
    "empty.json": (b"", "empty"),
    "broken.jsonl": (b'{"instruction": "a", "output": "b"}\n{"instruction": "c", \n', "line 2"),
    "columns.json": (json.dumps([{"question": "a", "answer": "b"}]).encode(), "question"),
    "empty_output.json": (json.dumps([{"instruction": "a", "output": "b"},
                                      {"instruction": "c", "output": ""}]).encode(), "row 2"),
    "mixed.jsonl": (b'{"instruction": "a", "output": "b"}\n{"messages": [{"role": "user", "content": "x"}]}\n',
                    "row 2"),
    "latin1.json": ('[{"instruction": "caf\u00e9", "output": "b"}]'.encode("latin-1"), "UTF-8"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_data_file_fails_with_one_sentence_and_no_complete_run(name, tiny_model, tmp_path):
    """The first file through `launch.py train` (the command line's exit status and stderr), the others through
    the function it calls, in this process (the data check is the same; a process costs seconds of imports)."""
    content, fragment = BAD_FILES[name]
    (tmp_path / name).write_bytes(content)
    config = write_config(tmp_path / "run.yaml", tiny_model, tmp_path / name, tmp_path / "run")
    result = launch("train", str(config)) if name == next(iter(BAD_FILES)) else train_in_process(str(config))
    assert result.returncode != 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and name in error_lines[0] and fragment in error_lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    run = RunDir(tmp_path / "run")
    assert run.weights_dir() is None and not run.metrics.exists()
    assert final_status(read_events(run.events)).state == "failed"


def test_a_validation_split_reports_eval_loss_and_perplexity(tiny_model, memorise_data, tmp_path):
    config = write_config(tmp_path / "run.yaml", tiny_model, memorise_data, tmp_path / "run",
                          data_options={"val_size": 0.25}, train={"max_steps": 2, "eval_steps": 1})
    result = train_in_process(str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    run = RunDir(tmp_path / "run")
    evals = [e for e in read_events(run.events) if isinstance(e, Metrics) and e.eval_loss is not None]
    assert [e.step for e in evals] == [1, 2]
    metrics = run.read_metrics()
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    assert "3 train / 1 validation rows" in result.stdout


def test_a_failed_run_is_started_afresh_with_overwrite(tiny_model, memorise_data, tmp_path):
    import os

    import psutil

    from engine.jobs.rundir import write_json_atomic

    run = RunDir(tmp_path / "run")
    failing = write_config(tmp_path / "run.yaml", Path("no-such-org/no-such-model"), memorise_data, run.path)
    assert launch("train", str(failing)).returncode == 1

    config = write_config(tmp_path / "run.yaml", tiny_model, memorise_data, run.path)  # the user fixes the model
    again = launch("train", str(config))
    assert again.returncode == 2 and "--overwrite" in again.stderr and "--resume" not in again.stderr
    resumed = launch("train", "--resume", str(run.path))
    assert resumed.returncode == 2 and "no checkpoint" in resumed.stderr and "--overwrite" in resumed.stderr
    (run.checkpoints / "checkpoint-1").mkdir(parents=True)
    (run.checkpoints / "checkpoint-1" / "trainer_state.json").write_text('{"global_step": 1}')  # complete
    assert "--resume" in launch("train", str(config)).stderr  # named only where there is something to resume

    failed_status = run.read_status()
    write_json_atomic(run.status, {"state": "training", "pid": os.getpid(),
                                   "pid_started": psutil.Process().create_time()})
    busy = launch("train", str(config), "--overwrite")
    assert busy.returncode == 2 and "still training" in busy.stderr and run.checkpoints.exists()
    write_json_atomic(run.status, failed_status)

    result = launch("train", str(config), "--overwrite")
    assert result.returncode == 0, result.stderr[-2000:]
    states = [e.state for e in read_events(run.events) if isinstance(e, Status)]
    assert "failed" not in states and states[-1] == "completed"
    assert not (run.checkpoints / "checkpoint-1").exists() and run.read_status()["state"] == "completed"
    assert "could not be loaded" not in run.train_log.read_text()


def test_one_explain_for_every_job_kind():
    from engine.config import ConfigError
    from engine.jobs.failures import DataError, explain

    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError's name, without torch
        pass

    sentence = "rows.json row 2: field 'output' is empty."
    assert explain(DataError(sentence)) == sentence
    config_error = ConfigError(["train.batch_size must be at least 1."])
    assert explain(config_error) == str(config_error)
    gpu = explain(OutOfMemoryError("CUDA error"))
    assert gpu.startswith("Out of GPU memory") and "train.batch_size" in gpu
    assert explain(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == gpu
    assert explain(MemoryError()).startswith("Out of memory (RAM)")
    merging = "Out of memory while merging: export on a machine with more memory, or with --dtype bfloat16."
    assert explain(MemoryError(), "export") == explain(RuntimeError("CUDA out of memory"), "export") == merging
    missing = ModuleNotFoundError("No module named 'bitsandbytes'", name="bitsandbytes")
    assert explain(missing) == "Missing package 'bitsandbytes': run `pip install -r requirements.txt`."
    assert explain(KeyError("step")) == "KeyError: 'step'" and explain(ValueError()) == "ValueError"
    assert explain(ValueError("first line\nsecond line")) == "ValueError: first line"


def test_explain_exit_says_why_a_process_ended_without_a_final_status():
    from engine.jobs.failures import explain_exit

    assert "out of gpu memory" in explain_exit(1, "torch.OutOfMemoryError: CUDA out of memory").lower()
    assert "out of gpu memory" in explain_exit(None, "RuntimeError: CUDA out of memory. Tried to allocate").lower()
    assert "sigkill" in explain_exit(-9, "").lower() and "sigkill" in explain_exit(137, "").lower()
    assert "sigkill" in explain_exit(None, "step 3/60\nKilled").lower()
    assert explain_exit(-9, "") == "The engine process was killed (SIGKILL)."  # nothing known: no guess
    assert "out-of-memory killer" in explain_exit(-9, "", oom_killed=True)
    assert "batch_size" in explain_exit(-9, "", oom_killed=True)
    assert "not by the out-of-memory killer" in explain_exit(-9, "", oom_killed=False)
    assert explain_exit(-15, "") == "The engine process was ended by signal SIGTERM."
    assert "code 3" in explain_exit(3, "")
    assert explain_exit(None, "") == ("The engine process is gone without a final status (killed, or the machine "
                                      "restarted).")


def test_failures_is_plain_python():
    """The web process imports engine.jobs.failures: it must not pull in a model library."""
    import subprocess
    import sys

    probe = ("import sys, engine.jobs.failures\n"
             "print(sorted(m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_diverging_run_fails_at_its_first_non_finite_step_and_saves_nothing(tiny_model, memorise_data, tmp_path):
    """learning_rate 1e30 (finite, so validation lets it through): the loss or gradient norm turns inf or nan within
    a few steps; the run fails there in one sentence naming the step and the lever, with no adapter/ (issue 24,
    item 10: before, it completed with every adapter value non-finite and a loss of 0.0)."""
    config = write_config(tmp_path / "run.yaml", tiny_model, memorise_data, tmp_path / "run",
                          train={"max_steps": 8, "learning_rate": 1e30, "logging_steps": 1})
    result = train_in_process(str(config))
    assert result.returncode == 1, result.stderr[-2000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Training diverged at step" in error[0], result.stderr[-2000:]
    assert "lower train.learning_rate (now 1e+30)" in error[0] and "Traceback" not in result.stderr
    run = RunDir(tmp_path / "run")
    assert run.weights_dir() is None and not run.adapter.exists() and not run.metrics.exists()
    assert final_status(read_events(run.events)).state == "failed" and run.read_status()["state"] == "failed"
    logged = [e.loss for e in read_events(run.events) if isinstance(e, Metrics) and e.loss is not None]
    assert all(math.isfinite(loss) for loss in logged)  # no inf or nan loss is shown as a number, nor 0.0 for one
