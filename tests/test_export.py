"""Export of real runs trained through the CLI on a tiny Llama: merged folders load without peft and
answer like the adapter model; prompt-learning runs export their adapter; a killed export leaves nothing."""

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

from engine.export import TOLERANCE, ExportResult, run_export
from tests.test_chat import MEMORY, trained_runs

ROOT = Path(__file__).resolve().parents[1]
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

    from engine.chat import read_run_config

    base = AutoModelForCausalLM.from_pretrained(read_run_config(run).model.name_or_path, dtype=torch.float32)
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(len(tokenizer))
    return PeftModel.from_pretrained(base, run / "adapter").eval()


@pytest.mark.parametrize("name", ["lora", "qlora", "ia3", "dora-plain"])
def test_merged_export_loads_without_peft_and_matches_adapter(runs: dict[str, Path], tmp_path: Path,
                                                              name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / f"{name}-merged"
    result = run_export(runs[name], out, log=lambda message: None)
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
    assert result.base_diff > 0 and result.adapter_zip and Path(result.zip).is_file()
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert "PeftModel.from_pretrained" in (out / "HOW_TO_LOAD.md").read_text(encoding="utf-8")
    assert "cannot be merged" in (out / "README.md").read_text(encoding="utf-8")
    base = AutoModelForCausalLM.from_pretrained(json.loads((out / "adapter_config.json").read_text())
                                                ["base_model_name_or_path"])
    PeftModel.from_pretrained(base, out)  # the note's recipe works


def test_killed_export_leaves_no_folder_and_cli_recovers(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "engine", "export", str(runs["lora"]), "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env)
    try:
        for line in process.stdout:
            if json.loads(line).get("message", "").startswith("writing"):
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
    events = [json.loads(line) for line in done.stdout.splitlines()]  # stdout holds nothing but JSON lines
    assert {e["kind"] for e in events[:-1]} == {"log"}
    status = events[-1]
    assert status["kind"] == "status" and status["state"] == "completed" and status["merged"] is True
    assert status["out"] == str(out) and status["reason"] is None and status["max_abs_diff"] < status["tolerance"]
    assert status["zip"] == str(tmp_path / "killed.zip")
    assert status["adapter_zip"] == str(tmp_path / "killed-adapter.zip")
    with zipfile.ZipFile(status["zip"]) as archive:
        names = archive.namelist()
        assert "killed/config.json" in names and "killed/README.md" in names and archive.testzip() is None
    with zipfile.ZipFile(status["adapter_zip"]) as archive:
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
    result = run_export(run, out, log=lambda message: None)
    assert result.state == "failed" and "base model" in result.error
    assert not out.exists() and not list(tmp_path.glob(".untrained-export.partial-*"))


def test_refusals_are_one_sentence(runs: dict[str, Path], tmp_path: Path) -> None:
    existing = tmp_path / "taken"
    existing.mkdir()
    assert "already exists" in run_export(runs["lora"], existing, log=lambda m: None).error
    assert "not a run folder" in run_export(tmp_path, tmp_path / "x", log=lambda m: None).error
    bad: ExportResult = run_export(runs["lora"], tmp_path / "y", dtype="int3", log=lambda m: None)
    assert bad.state == "failed" and "dtype" in bad.error
    assert bad.status_event() == {"kind": "status", "state": "failed", "error": bad.error}


def test_freeze_run_exports_the_trained_model_verified(runs: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "freeze-export"
    result = run_export(runs["freeze"], out, log=lambda message: None)
    assert result.state == "completed", result.error
    assert result.merged and result.max_abs_diff <= result.tolerance < result.base_diff
    exported = AutoModelForCausalLM.from_pretrained(out)
    trained = AutoModelForCausalLM.from_pretrained(runs["freeze"] / "model")
    for (name, a), (_, b) in zip(exported.state_dict().items(), trained.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
