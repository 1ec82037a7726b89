"""Export of real runs trained through the CLI on a tiny Llama: merged folders load without peft and
answer like the adapter model; prompt-learning runs export their adapter; a killed export leaves nothing;
an export job reports through its folder (events, status.json, export.log) like every engine job."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine.config import ExportConfig
from engine.export.merge import INTERRUPTED, ExportResult, run_export
from engine.export.verify import TOLERANCE
from engine.jobs.events import Log, Status, final_status, read_events
from engine.jobs.rundir import ExportDir, RunDir
from tests.cli import launch
from tests.engine.test_chat import MEMORY, trained_runs

ROOT = Path(__file__).resolve().parents[2]
RUNS = {  # name -> (base, method, options); "lora" is shared with test_chat.py
    "lora": ("chatml", "lora", {}),
    "qlora": ("chatml", "qlora", {}),
    "ia3": ("chatml", "ia3", {}),
    "prefix": ("chatml", "prefix", {"num_virtual_tokens": 4, "steps": 5}),
    # a base without ChatML tokens: turns end with its eos, and the vocabulary stays as it was
    "dora-plain": ("plain", "dora", {}),
    "freeze": ("chatml", "freeze", {"freeze_trainable_layers": 1, "steps": 5}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trained_runs(tmp_path_factory, RUNS)


def greedy(model, tokenizer, question: str, max_new_tokens: int = 16) -> list[int]:
    import torch

    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**ids, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    return out[0, ids["input_ids"].shape[1]:].tolist()


def adapter_model(run: Path, tokenizer):
    """The run's adapter over its base in float32 (for QLoRA: the full-precision base the merge targets)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(RunDir(run).read_config().model.name_or_path, dtype=torch.float32)
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(len(tokenizer))
    return PeftModel.from_pretrained(base, run / "adapter").eval()


@pytest.mark.parametrize("name", ["lora", "qlora", "ia3", "dora-plain"])
def test_merged_export_loads_without_peft_and_matches_adapter(runs: dict[str, Path], tmp_path: Path,
                                                              name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / f"{name}-merged"
    result = run_export(runs[name], out, log=lambda _message: None)
    assert result.state == "completed", result.error
    assert result.merged and result.reason is None and result.dtype == "float32"
    assert result.max_abs_diff is not None and result.max_abs_diff <= result.tolerance
    assert TOLERANCE["float32"] <= result.tolerance < 1e-2
    assert result.base_diff > result.tolerance

    files = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "README.md", "tokenizer.json"} <= files
    assert any(f.endswith(".safetensors") for f in files) and "adapter_config.json" not in files
    assert not list(tmp_path.glob(".*partial*")), "no temporary folder may be left beside the export"

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()  # transformers alone
    assert not any("lora" in key or "ia3" in key for key in model.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(out)
    run_tokenizer = AutoTokenizer.from_pretrained(runs[name] / "adapter")
    assert tokenizer.chat_template and tokenizer.chat_template == run_tokenizer.chat_template
    assert model.get_input_embeddings().weight.shape[0] >= len(tokenizer)

    reference = adapter_model(runs[name], run_tokenizer)
    for row in MEMORY:
        assert greedy(model, tokenizer, row["instruction"]) == greedy(reference, run_tokenizer, row["instruction"])
    if name in ("lora", "qlora"):  # they memorise the rows in 20 steps, and the merge keeps that
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        ids = model.generate(**tokenizer.apply_chat_template(
            [{"role": "user", "content": MEMORY[0]["instruction"]}], add_generation_prompt=True,
            return_tensors="pt", return_dict=True), do_sample=False, max_new_tokens=40)
        assert im_end in model.generation_config.eos_token_id or model.generation_config.eos_token_id == im_end
        assert tokenizer.decode(ids[0], skip_special_tokens=True).endswith(MEMORY[0]["output"])

    card = (out / "README.md").read_text(encoding="utf-8")
    assert "base_model:" in card and "memory.json" in card and "train_loss" in card
    if name == "qlora":
        assert "4-bit" in card and "not into the quantized weights" in card


def test_prefix_export_explains_and_writes_the_adapter(runs: dict[str, Path], tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "prefix-export"
    logs: list[str] = []
    result = run_export(runs["prefix"], out, make_zip=True, log=logs.append)
    assert result.state == "completed" and result.merged is False, result.error
    assert "cannot be merged" in result.reason and result.reason.count(". ") == 0 and result.reason in logs
    assert result.base_diff > 0 and Path(result.zip).is_file()
    assert result.adapter_zip is None and sorted(p.name for p in tmp_path.glob("*.zip")) == ["prefix-export.zip"]
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert "PeftModel.from_pretrained" in (out / "HOW_TO_LOAD.md").read_text(encoding="utf-8")
    assert "cannot be merged" in (out / "README.md").read_text(encoding="utf-8")
    base = AutoModelForCausalLM.from_pretrained(json.loads((out / "adapter_config.json").read_text())
                                                ["base_model_name_or_path"])
    PeftModel.from_pretrained(base, out)  # the note's recipe works


def test_killed_export_leaves_no_folder_and_cli_recovers(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "engine", "export", str(runs["lora"]), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        for line in process.stderr:  # the command line's progress lines
            if line.startswith("writing"):
                process.send_signal(signal.SIGKILL)  # no cleanup handler runs
                break
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed export must not leave a folder that looks complete"
    assert list(tmp_path.glob(".killed.partial-*")), "the half-written folder is hidden beside DIR"

    # the same export again, through the CLI with --zip: it succeeds and tidies up the leftover
    done = subprocess.run([*command, "--zip", "--dtype", "float32"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "" and done.stderr.splitlines()[-1] == f"done: {out}"
    written = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert written["merged"] is True and written["reason"] is None and written["dtype"] == "float32"
    assert written["max_abs_diff"] <= written["tolerance"] < written["base_diff"]
    with zipfile.ZipFile(tmp_path / "killed.zip") as archive:
        names = archive.namelist()
        assert "killed/config.json" in names and "killed/README.md" in names and archive.testzip() is None
    with zipfile.ZipFile(tmp_path / "killed-adapter.zip") as archive:
        assert "killed-adapter/adapter_config.json" in archive.namelist()
    assert out.is_dir() and not list(tmp_path.glob(".killed*partial*"))


def test_a_merge_equal_to_the_base_is_a_failure(runs: dict[str, Path], tmp_path: Path) -> None:
    """An adapter that changes nothing (LoRA B = 0, as before any training) must not export as a success."""
    from safetensors.torch import load_file, save_file

    run = tmp_path / "untrained"
    shutil.copytree(runs["lora"], run, ignore=shutil.ignore_patterns("checkpoints"))
    weights = run / "adapter" / "adapter_model.safetensors"
    tensors = {k: v.zero_() if "lora_B" in k else v for k, v in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    out = tmp_path / "untrained-export"
    result = run_export(run, out, log=lambda _message: None)
    assert result.state == "failed" and "base model" in result.error
    assert not out.exists() and not list(tmp_path.glob(".untrained-export.partial-*"))


def test_refusals_are_one_sentence(runs: dict[str, Path], tmp_path: Path) -> None:
    existing = tmp_path / "taken"
    existing.mkdir()
    assert "already exists" in run_export(runs["lora"], existing, log=lambda _message: None).error
    assert "not a run folder" in run_export(tmp_path, tmp_path / "x", log=lambda _message: None).error
    bad: ExportResult = run_export(runs["lora"], tmp_path / "y", dtype="int3", log=lambda _message: None)
    assert bad.state == "failed" and "dtype" in bad.error and bad.error.count(". ") == 0


def test_a_symlink_in_the_adapter_is_refused_never_packed(runs: dict[str, Path], tmp_path: Path) -> None:
    """A link in a run's adapter/ to a file outside the workspace (issue 24, item 9): the export refuses in one
    sentence before it copies or packs anything; nothing is written."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not the run's")
    run = tmp_path / "run"
    shutil.copytree(runs["lora"], run)
    (run / "adapter" / "notes.txt").symlink_to(secret)
    result = run_export(run, tmp_path / "out", make_zip=True, log=lambda _message: None)
    assert result.state == "failed" and "notes.txt is a symbolic link" in result.error, result.error
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("*.zip"))


def test_freeze_run_exports_the_trained_model_verified(runs: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "freeze-export"
    result = run_export(runs["freeze"], out, log=lambda _message: None)
    assert result.state == "completed", result.error
    assert result.merged and result.max_abs_diff <= result.tolerance < result.base_diff
    exported = AutoModelForCausalLM.from_pretrained(out)
    trained = AutoModelForCausalLM.from_pretrained(runs["freeze"] / "model")
    for (name, a), (_, b) in zip(exported.state_dict().items(), trained.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def export_job(root: Path, name: str, run: Path, **options: object) -> ExportDir:
    """An export job folder as the page writes it: WORKSPACE/exports/NAME/config.yaml."""
    job = ExportDir(root / "exports" / name)
    job.path.mkdir(parents=True)
    job.config.write_text(ExportConfig(run_dir=str(run), **options).to_yaml(), encoding="utf-8")
    return job


def engine_export_job(job: ExportDir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", "export", "--job", str(job.path)], cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_export_job_reports_through_its_folder(runs: dict[str, Path], tmp_path: Path) -> None:
    job = export_job(tmp_path, "lora-float32", runs["lora"], dtype="float32", zip=True)
    process = engine_export_job(job)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-2000:]

    events = read_events(job.events)  # every line parses with the one schema, or this raises
    assert len(events) == len(job.events.read_text(encoding="utf-8").splitlines())
    states = [e.state for e in events if isinstance(e, Status)]
    assert states == ["starting", "loading_model", "exporting", "verifying", "saving", "completed"]
    assert any(isinstance(e, Log) and e.message.startswith("writing the merged model") for e in events)
    final = final_status(events)
    result = final.result
    assert final.error is None and set(result) == {"merged", "out", "zip", "adapter_zip", "reason", "max_abs_diff",
                                                   "base_diff", "tolerance", "dtype", "verified_on", "prompt_source"}
    assert result["merged"] is True and result["reason"] is None and result["dtype"] == "float32"
    assert result["max_abs_diff"] <= result["tolerance"] < result["base_diff"] and result["verified_on"] > 0
    assert result["out"] == str(job.out) and result["zip"] == str(job.zip)
    assert result["adapter_zip"] == str(job.adapter_zip)
    assert job.read_status()["state"] == "completed" and job.read_status()["result"] == result
    assert job.read_status()["pid"] == process.pid
    assert (job.out / "config.json").is_file() and (job.out / "README.md").is_file()
    with zipfile.ZipFile(job.zip) as archive:
        assert "lora-float32/config.json" in archive.namelist() and archive.testzip() is None
    with zipfile.ZipFile(job.adapter_zip) as archive:
        assert "lora-float32-adapter/adapter_config.json" in archive.namelist()
    assert "# lora-float32" in (job.out / "README.md").read_text(encoding="utf-8")
    assert "state: completed" in job.log.read_text(encoding="utf-8")


def test_failing_export_job_ends_failed_with_one_sentence(runs: dict[str, Path], tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"  # a run folder with its config but no adapter/
    unfinished.mkdir()
    shutil.copy(RunDir(runs["lora"]).config, unfinished / "config.yaml")
    job = export_job(tmp_path, "unfinished-float32", unfinished, dtype="float32")
    process = engine_export_job(job)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1, output[-2000:]

    final = final_status(read_events(job.events))
    sentence = f"{unfinished} has no adapter/ folder: the run has not finished, so there is nothing to export."
    assert (final.state, final.error, final.result) == ("failed", sentence, None)
    assert job.read_status()["state"] == "failed" and job.read_status()["error"] == sentence
    assert "Traceback" in job.log.read_text(encoding="utf-8")  # the full story is in export.log
    assert not job.out.exists() and not list(job.path.glob(".model.partial-*"))

    missing = ExportDir(tmp_path / "exports" / "no-config")
    missing.path.mkdir()
    assert engine_export_job(missing).wait(timeout=120) == 1
    final = final_status(read_events(missing.events))
    assert final.state == "failed" and final.error == f"{missing.path} is not an export folder: it has no config.yaml."


def test_sigterm_ends_an_export_job_failed_and_writes_nothing(runs: dict[str, Path], tmp_path: Path) -> None:
    job = export_job(tmp_path, "stopped", runs["lora"], dtype="float32", zip=True)
    process = engine_export_job(job)
    try:
        for line in process.stdout:  # the job's user lines are echoed on stdout
            if line.startswith("writing"):
                process.send_signal(signal.SIGTERM)
                break
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    final = final_status(read_events(job.events))
    assert (final.state, final.error) == ("failed", INTERRUPTED)
    assert job.read_status()["error"] == INTERRUPTED
    assert not job.out.exists() and not job.zip.exists() and not list(job.path.glob(".*partial*"))


def test_export_of_a_folder_that_does_not_exist_says_what_to_give(tmp_path):
    """`launch.py export FOLDER` with a folder that does not exist: one sentence saying what to give instead."""
    result = launch("export", str(tmp_path / "my-run"), "--out", str(tmp_path / "out"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'my-run'} does not exist: give a run's folder, or the name of a run in the workspace " \
        "(WORKSPACE/runs/NAME" in result.stderr, result.stderr
