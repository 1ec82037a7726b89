"""The pre-flight memory check (issue 11, defect 9): a configuration whose step cannot fit is refused with one
sentence before the first step; an ordinary one passes and logs its bound. Issue 24 item 11: the memory limits
that apply to the process (its own cgroups, v1 and v2, and RLIMIT_AS) are read; virtual tokens are counted and
refused before the model loads; the sentence names the lever of the term that dominates."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from engine.config import MethodConfig, ModelConfig, RunConfig, parse_config
from engine.jobs.rundir import RunDir
from engine.model.loading import load_model
from engine.train.preflight import (
    GIB,
    MemoryCheckError,
    check_fits,
    check_virtual_tokens,
    estimate,
    largest_batch,
    memory_room,
)
from tests.cli import run_train_in_process


def test_largest_batch_padded_and_packed():
    lengths = [10, 50, 20, 40, 30]
    assert largest_batch(lengths, 2, packing=False) == (2, 50)
    assert largest_batch(lengths, 2, packing=True) == (1, 90)
    assert largest_batch(lengths, 99, packing=True) == (1, 150)
    assert largest_batch(lengths, 99, packing=True, pack_len=60) == (3, 60)  # [50, 10] [40, 20] [30]


def test_the_audits_batch_is_refused_and_an_ordinary_one_passes(tiny_model: Path):
    model = load_model(ModelConfig(name_or_path=str(tiny_model)))
    lengths = [44] * 8192  # batch 8192 at cutoff 8192 on short rows: one packed row of 360,448 tokens
    step = estimate(model, trainable=10_000, lengths=lengths, batch_size=8192, packing=True)
    assert step.tokens == 44 * 8192 and step.attention == (44 * 8192) ** 2
    with pytest.raises(MemoryCheckError) as refused:
        check_fits(step, 20 * GIB, "RAM", batch_size=8192, cutoff_len=8192, packing=True)
    sentence = str(refused.value)
    assert "attention mask" in sentence and "121.0 GiB" in sentence and "train.batch_size (now 8192)" in sentence
    assert "train.packing: off" in sentence and "cutoff_len" not in sentence and "\n" not in sentence  # rows are short
    step = estimate(model, trainable=10_000, lengths=[512] * 64, batch_size=64, packing=False)
    with pytest.raises(MemoryCheckError, match=r"lower train.batch_size \(now 64\), or lower train.cutoff_len"):
        check_fits(step, 0, "RAM", batch_size=64, cutoff_len=512, packing=False)

    ordinary = estimate(model, trainable=10_000, lengths=[200] * 40, batch_size=4, packing=False)
    line = check_fits(ordinary, 20 * GIB, "RAM", batch_size=4, cutoff_len=256, packing=False)
    assert line.startswith("memory estimate: one step needs about") and ordinary.total < GIB


def test_a_run_that_cannot_fit_fails_before_its_first_step(tiny_model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("engine.train.preflight.available_memory", lambda: (256 * 2**20, "RAM"))  # a small machine
    data = tmp_path / "short.jsonl"
    answer = "The quick brown fox jumps over the lazy dog. " * 12  # about 150 tokens a row
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": answer}) + "\n" for i in range(2048)))
    config = parse_config({
        "model": {"name_or_path": str(tiny_model)}, "method": {"name": "lora", "r": 4},
        "data": {"path": str(data)}, "train": {"max_steps": 1, "batch_size": 2048, "cutoff_len": 8192, "packing": "on"},
        "output_dir": str(tmp_path / "run")})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert run_train_in_process(config) == 1
    status = RunDir(tmp_path / "run").read_status()
    assert status["state"] == "failed" and status["error"].startswith("This configuration cannot fit")
    assert status.get("step") in (None, 0)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 2048  # refused, not attempted


def _plant(root: Path, files: dict[str, str]) -> Path:
    """A fake filesystem root: /proc and /sys/fs/cgroup files as a container shows them."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


MEMINFO = {"proc/meminfo": f"MemTotal: {64 * 2**20} kB\nMemAvailable: {20 * 2**20} kB\n"}  # 20 GiB "free"


def test_the_limits_of_the_process_own_cgroups_and_rlimit_as_are_read(tmp_path: Path):
    """Issue 24 item 11: a limit on the process's own v2 sub-cgroup, or a parent of it, a v1 memory limit, or
    RLIMIT_AS bounds the memory pre-flight promises, not the root cgroup's memory.max alone."""
    v2 = _plant(tmp_path / "v2", {**MEMINFO, "proc/self/cgroup": "0::/user.slice/job.scope\n",
                                  "sys/fs/cgroup/user.slice/memory.max": str(8 * GIB),
                                  "sys/fs/cgroup/user.slice/memory.current": str(GIB),
                                  "sys/fs/cgroup/user.slice/job.scope/memory.max": "max",
                                  "sys/fs/cgroup/user.slice/job.scope/memory.current": str(GIB)})
    room, where = memory_room(v2, address_limit=None)
    assert room == 7 * GIB and "user.slice" in where  # the parent's limit applies to its child
    (v2 / "sys/fs/cgroup/user.slice/job.scope/memory.max").write_text(str(3 * GIB))
    assert memory_room(v2)[0] == 2 * GIB  # the smallest room wins

    v1 = _plant(tmp_path / "v1", {**MEMINFO, "proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n12:memory:/docker/abc\n",
                                  "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
                                  "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": str(2 * GIB),
                                  "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": str(GIB // 2)})
    room, where = memory_room(v1)
    assert room == 3 * GIB // 2 and "cgroup v1" in where
    mounted_as_root = _plant(tmp_path / "ns", {**MEMINFO, "proc/self/cgroup": "0::/docker/abc\n",
                                               "sys/fs/cgroup/memory.max": str(4 * GIB)})
    assert memory_room(mounted_as_root)[0] == 4 * GIB  # the container's own cgroup mounted as the root

    plain = _plant(tmp_path / "plain", {**MEMINFO, "proc/self/status": f"VmSize: {2**20} kB\n"})
    assert memory_room(plain) == (20 * GIB, "RAM")
    room, where = memory_room(plain, address_limit=4 * GIB)
    assert room == 3 * GIB and "RLIMIT_AS" in where


def _prompt_config(tiny_model: Path, tmp_path: Path, **method) -> RunConfig:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "an answer"}) + "\n" for i in range(8)))
    return parse_config({"model": {"name_or_path": str(tiny_model)}, "method": method, "data": {"path": str(data)},
                         "train": {"max_steps": 1, "batch_size": 2}, "output_dir": str(tmp_path / "run")})


def test_a_million_virtual_tokens_are_refused_before_the_model_loads(tiny_model: Path, tmp_path: Path, monkeypatch):
    for name in ("prompt", "prefix", "ptuning"):
        config = _prompt_config(tiny_model, tmp_path, name=name, num_virtual_tokens=1_000_000)
        refused = r"1,000,000 virtual tokens .* lower method.num_virtual_tokens \(now 1000000\)"
        with pytest.raises(MemoryCheckError, match=refused):
            check_virtual_tokens(config, [40] * 8, available=(2 * GIB, "RAM"))
        assert check_virtual_tokens(_prompt_config(tiny_model, tmp_path, name=name, num_virtual_tokens=20),
                                    [40] * 8, available=(2 * GIB, "RAM")).startswith("memory check")

    def not_loaded(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("engine.model.loading.load_model", not_loaded)
    assert run_train_in_process(_prompt_config(tiny_model, tmp_path, name="prompt", num_virtual_tokens=1_000_000)) == 1
    error = RunDir(tmp_path / "run").read_status()["error"]
    assert "virtual tokens" in error and "method.num_virtual_tokens" in error


def test_the_advice_names_the_lever_of_the_term_that_dominates(tiny_model: Path):
    model = load_model(ModelConfig(name_or_path=str(tiny_model)))
    lora = MethodConfig(name="lora", r=100_000)
    trainable = 2 * 7 * 100_000 * (64 + 128)  # about an oversized rank on every linear layer of the tiny model
    step = estimate(model, trainable=trainable, lengths=[40] * 8, batch_size=4, packing=False, method=lora)
    with pytest.raises(MemoryCheckError) as refused:
        check_fits(step, 2 * GIB, "RAM", batch_size=4, cutoff_len=256, packing=False, method=lora)
    assert "the optimizer states" in str(refused.value) and "lower method.r (now 100000)" in str(refused.value)
    assert "batch_size" not in str(refused.value)

    prompt = MethodConfig(name="prompt", num_virtual_tokens=200_000)
    step = estimate(model, trainable=10_000, lengths=[40] * 8, batch_size=4, packing=False, method=prompt)
    assert step.virtual > step.activations  # what 200,000 tokens in front of every row add is counted
    with pytest.raises(MemoryCheckError, match=r"virtual tokens' activations .* lower method.num_virtual_tokens"):
        check_fits(step, 2 * GIB, "RAM", batch_size=4, cutoff_len=256, packing=False, method=prompt)
