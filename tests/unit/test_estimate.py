"""Issue 26 items 3 and 4: the memory and time estimate from config.json alone (engine/estimate), its verdict on the
Train tab, and the advice of a configuration that fits. In-process and pure: nothing trains, no torch needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from engine.config import RunConfig, parse_config
from engine.estimate import advice, memory, room, timing
from engine.estimate.memory import GIB, estimate, verdict
from engine.model import shapes

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "models" / "workbench-demo-5m"
DATA = ROOT / "assets" / "datasets" / "identity_alpaca.json"
LLAMA_7B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "tie_word_embeddings": False}


def run_config(method: dict | None = None, dtype: str = "auto", **train) -> RunConfig:
    return parse_config({"model": {"name_or_path": str(DEMO), "dtype": dtype}, "method": method or {"name": "lora"},
                         "data": {"path": str(DATA)}, "train": train, "output_dir": "out"})


def demo() -> dict:
    return json.loads((DEMO / "config.json").read_text())


def test_parts_follow_the_method_dtype_and_batch():
    lora = estimate(run_config({"name": "lora", "r": 8}), demo(), "cpu")
    total = shapes.estimate_total(demo())
    trainable = shapes.count(demo(), run_config().method)["trainable_params"]
    assert lora.weights == (total + trainable) * 4 and lora.gradients == trainable * 4  # fp32 on the CPU
    assert lora.optimizer == 2 * lora.gradients and lora.overhead == memory.CPU_PROCESS
    assert lora.total == sum(lora.parts().values())
    full = estimate(run_config({"name": "full"}), demo(), "cpu")
    assert full.gradients == total * 4 and full.optimizer == total * 8  # AdamW's two moments
    bf16 = estimate(run_config({"name": "full"}, dtype="bfloat16"), demo(), "gpu")
    assert bf16.weights == total * 2 and bf16.optimizer == total * 4 and bf16.overhead > memory.GPU_CONTEXT

    small = estimate(run_config(batch_size=2), demo(), "cpu")
    large = estimate(run_config(batch_size=8), demo(), "cpu")
    assert large.activations == 4 * small.activations and large.tokens == 8 * 512
    checkpointed = estimate(run_config(batch_size=8, gradient_checkpointing=True), demo(), "cpu")
    assert checkpointed.activations < large.activations / 2
    preference = estimate(run_config(batch_size=8, stage="dpo"), demo(), "cpu")
    assert preference.rows == 16 and preference.logits == 16 * 512 * 4096 * 8  # TRL's loss: the full logits



def test_measured_row_lengths_give_the_largest_batch_the_data_makes():
    """Short rows (the demo's are tens of tokens) are not counted as rows of cutoff_len: the estimate takes the
    largest batch of the measured lengths, as the check before the first step does (engine/train/preflight.py)."""
    lengths = [30, 120, 45, 600, 80, 10]  # one row over the cutoff: cut at 256
    full_rows = estimate(run_config(batch_size=4, cutoff_len=256, packing="off"), demo(), "cpu")
    padded = estimate(run_config(batch_size=4, cutoff_len=256, packing="off"), demo(), "cpu", lengths)
    assert (padded.rows, padded.tokens, padded.longest) == (4, 4 * 256, 256)  # the longest row is cut at 256
    short = estimate(run_config(batch_size=4, cutoff_len=256, packing="off"), demo(), "cpu", [30, 120, 45, 80, 10])
    assert (short.rows, short.tokens) == (4, 4 * 120) and short.activations * 256 == full_rows.activations * 120
    assert short.total < full_rows.total and short.weights == full_rows.weights
    packed = estimate(run_config(batch_size=4, cutoff_len=256, packing="on"), demo(), "cpu", [30, 120, 45, 80, 10])
    assert (packed.rows, packed.tokens) == (2, 2 * 245)  # first fit into 256: [120, 80, 45] [30], padded to 245
    auto = estimate(run_config(batch_size=4, cutoff_len=256), demo(), "cpu", [30, 120, 45, 80, 10])
    assert auto.total == max(short.total, packed.total)  # auto: whichever the run picks, the larger


def test_dpo_and_kto_count_their_reference_a_copy_of_the_weights_only_with_full_and_freeze():
    total = shapes.estimate_total(demo())
    for stage in ("dpo", "kto"):
        full = estimate(run_config({"name": "full"}, stage=stage, batch_size=2), demo(), "cpu")
        assert full.reference == full.weights == total * 4 and full.total == sum(full.parts().values())
        freeze = estimate(run_config({"name": "freeze", "freeze_trainable_layers": 1}, stage=stage, batch_size=2),
                          demo(), "cpu")
        assert freeze.reference == freeze.weights and freeze.gradients < freeze.weights / 2
        lora = estimate(run_config({"name": "lora"}, stage=stage, batch_size=2), demo(), "cpu")
        assert lora.reference == lora.gradients < lora.weights / 10  # TRL's "ref" copy of the adapter, no base
    orpo = estimate(run_config({"name": "full"}, stage="orpo", batch_size=2), demo(), "cpu")
    sft = estimate(run_config({"name": "full"}, batch_size=2), demo(), "cpu")
    assert orpo.reference == sft.reference == 0  # reference-free
    dpo = estimate(run_config({"name": "full"}, stage="dpo", batch_size=2), demo(), "cpu")
    assert dpo.total - orpo.total == dpo.reference
    assert "reference model" in dpo.summary()


def test_seven_billion_parameters_as_peers_count_them():
    lora = estimate(run_config({"name": "lora"}, dtype="bfloat16", batch_size=1, cutoff_len=512), LLAMA_7B, "gpu")
    assert 12.4 < lora.weights / GIB < 12.8  # 6.74 B parameters in bf16
    qlora = estimate(run_config({"name": "qlora"}, dtype="bfloat16", batch_size=1, cutoff_len=512), LLAMA_7B, "gpu")
    assert qlora.weights < lora.weights / 2.5 and qlora.total < lora.total
    full = estimate(run_config({"name": "full"}, dtype="bfloat16", batch_size=1, cutoff_len=512), LLAMA_7B, "gpu")
    mixed = estimate(run_config({"name": "full"}, dtype="float32", batch_size=1, cutoff_len=512), LLAMA_7B, "gpu")
    assert 50 < full.total / GIB < 70 and 100 < mixed.total / GIB < 130  # LLaMA-Factory: 60 GB and 120 GB


def test_unknown_shapes_give_no_estimate():
    assert estimate(run_config(), {"model_type": "llama"}, "cpu") is None
    gpt2_like = {"model_type": "gpt2", "n_embd": 32, "vocab_size": 100}
    assert estimate(run_config(), gpt2_like, "cpu") is None


def test_verdict_has_the_estimates_accuracy_as_margin():
    assert verdict(10 * GIB, 12 * GIB) == "fits"
    assert verdict(10 * GIB, 10 * GIB) == "tight"
    assert verdict(10 * GIB, 8 * GIB) == "will not fit"


def test_advice_keeps_the_effective_batch_and_fits():
    config = run_config(batch_size=16, gradient_accumulation_steps=2, cutoff_len=2048, gradient_checkpointing=True)
    step = estimate(config, demo(), "cpu")
    free = int(estimate(run_config(batch_size=2, cutoff_len=2048, gradient_checkpointing=True), demo(),
                             "cpu").total * 1.2)
    assert verdict(step.total, free) == "will not fit"
    found = advice.suggest(config, lambda c: estimate(c, demo(), "cpu"), free)
    assert found is not None and found.estimate.total * (1 + memory.ACCURACY) <= free
    changed = found.apply(config)
    assert changed.train.batch_size * changed.train.gradient_accumulation_steps == 32
    assert changed.train.cutoff_len == 2048  # a shorter cutoff is never applied
    assert "train.batch_size" in found.sentence() and "the same 32 rows per update" in found.sentence()
    assert f"-  batch_size: 16\n+  batch_size: {changed.train.batch_size}" in found.diff()
    assert advice.candidates(run_config())[0] == {"gradient_checkpointing": (False, True)}  # least change first

    hopeless = advice.suggest(run_config(batch_size=1, cutoff_len=4096), lambda c: estimate(c, demo(), "cpu"),
                              memory.CPU_PROCESS + 200 * 2**20)
    assert hopeless is not None and not hopeless.changes and hopeless.cutoff is not None  # offered, not applied
    assert "cutoff_len" in hopeless.diff() and hopeless.apply(run_config()).train.cutoff_len == 512


def test_time_from_the_newest_finished_run(tmp_path: Path):
    assert timing.measured_rate(tmp_path) is None
    for name, rate in (("old", 10.0), ("new", 1000.0)):
        (tmp_path / name).mkdir()
        metrics = {"tokens_per_s": rate, "total_params": 1_000_000, "method": "lora"}
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / "metrics.json").write_text("{}")
    flops, run = timing.measured_rate(tmp_path)
    assert run == "new" and flops == 1000.0 * 4 * 1_000_000  # forward and input gradients: 4 FLOPs a parameter
    config = run_config(max_steps=10, batch_size=2, cutoff_len=100)
    rate, seconds = timing.seconds(config, {"model_type": "x", "hidden_size": 8, "num_hidden_layers": 1,
                                            "vocab_size": 10, "intermediate_size": 8}, flops)
    assert seconds == pytest.approx(2000 / rate) and timing.tokens_to_train(config) == 2000
    assert timing.seconds(run_config(), demo(), flops) is None  # by epochs: the rows are not counted here
    assert timing.flops_per_token("full", 10) == 60 and timing.flops_per_token("lora", 10, checkpointing=True) == 60
    assert timing.clock(3 * 3600 + 300) == "3 h 05 min" and timing.clock(40) == "40 s"


def test_no_nvidia_smi_means_the_cpu(monkeypatch):
    monkeypatch.setattr(room, "_gpu_answer", None)
    monkeypatch.setattr("shutil.which", lambda _name: None)
    assert room.gpu_free(now=1.0) is None
    monkeypatch.setattr(room, "_gpu_answer", (1.0, 5 * GIB))
    assert room.gpu_free(now=2.0) == 5 * GIB  # kept GPU_TTL seconds


def test_train_tab_verdict_changes_when_the_batch_grows(tmp_path: Path, monkeypatch):
    from webui.context import AppContext
    from webui.forms import mapping as forms
    from webui.forms.fields import BATCH_SIZE
    from webui.tabs.train import estimate as train_estimate

    ctx = AppContext.create(tmp_path / "ws")
    monkeypatch.setattr(room, "gpu_free", lambda: None)
    monkeypatch.setattr(room, "memory_room", lambda: (GIB, "RAM"))
    visitor = SimpleNamespace(session_hash="a", headers={}, cookies={}, query_params={})

    def shown(batch: int) -> str:
        values = forms.widget_values({**forms.defaults(), BATCH_SIZE: batch})
        return train_estimate.estimate_text(ctx, visitor, str(DEMO), str(DATA), [], "auto", "lora", *values)

    assert "**fits**" in shown(1) and "no finished run" in shown(1)
    assert "**will not fit**" in shown(64)
    assert train_estimate.estimate_text(ctx, visitor, "", str(DATA), [], "auto", "lora",
                                        *forms.widget_values(forms.defaults())) == ""
    asked = []  # the inspection's cached lengths (webui/tabs/train/data.py cached_lengths), where it measured them

    def cached(*args):
        asked.append(args[1:])
        return [40] * 40
    monkeypatch.setattr(train_estimate, "cached_lengths", cached)
    short = shown(64)  # 64 rows of 40 tokens, not of cutoff_len: it fits now
    assert "**fits**" in short and "the largest batch of the data's 40 rows" in short
    assert asked[-1][:2] == (str(DEMO), str(DATA))


def test_train_tab_estimate_lists_every_part_in_the_visitors_language(tmp_path: Path, monkeypatch):
    """The parts add up to the total (the process's overhead, most of a small model's, was left out), are named in
    the visitor's language (the Chinese page said "weights"), and the longest measured row is counted as trained:
    cut at cutoff_len (a cutoff of 32 said "the longest 49 tokens")."""
    from webui.context import AppContext
    from webui.forms import mapping as forms
    from webui.forms.fields import CUTOFF_LEN
    from webui.tabs.train import estimate as train_estimate

    ctx = AppContext.create(tmp_path / "ws")
    monkeypatch.setattr(room, "gpu_free", lambda: None)
    monkeypatch.setattr(room, "memory_room", lambda: (64 * GIB, "RAM"))
    monkeypatch.setattr(train_estimate, "cached_lengths", lambda *_args: [49, 20, 12])
    values = forms.widget_values({**forms.defaults(), CUTOFF_LEN: 32})

    def shown(language: str) -> str:
        visitor = SimpleNamespace(session_hash="a", headers={"accept-language": language}, cookies={},
                                  query_params={})
        return train_estimate.estimate_text(ctx, visitor, str(DEMO), str(DATA), [], "auto", "lora", *values)

    english = shown("en-US")
    total, parts = re.search(r"\*\*([\d.]+ \w+)\*\* on .+? \((\w+ [\d.]+ .+?)\); ", english).groups()
    sizes = [float(number) * (1024 if unit == "GiB" else 1)
             for number, unit in re.findall(r"([\d.]+) (MiB|GiB)", parts)]
    in_mib = float(total.split()[0]) * (1024 if total.endswith("GiB") else 1)
    assert "overhead" in parts and abs(sum(sizes) - in_mib) <= 0.02 * in_mib, (total, parts)
    assert "the longest 32 tokens" in english
    chinese = shown("zh-CN")
    assert "权重" in chinese and "进程开销" in chinese and "weights" not in chinese and "overhead" not in chinese


def test_the_estimate_command_prints_the_parts_and_a_config_diff(tmp_path: Path, capsys):
    from engine.cli import estimate as command

    path = tmp_path / "big.yaml"
    big = run_config(batch_size=32, cutoff_len=2048)
    path.write_text(big.model_copy(update={"output_dir": str(tmp_path)}).to_yaml())
    assert command.main([str(path), "--device", "cpu", "--free-gib", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu: one step needs about") and "activations" in out and "will not fit" in out
    diff = "a configuration that fits:\ntrain:\n-  gradient_checkpointing: false\n+  gradient_checkpointing: true"
    assert diff in out
    assert command.main([str(path), "--device", "cpu", "--free-gib", "500"]) == 0
    assert "500.00 GiB: fits" in capsys.readouterr().out
    measured = command.main([str(path), "--device", "cpu", "--free-gib", "3", "--measure-data"])
    out = capsys.readouterr().out  # the demo's 40 rows are all far below 2048 tokens: the step fits now
    assert measured == 0 and "the largest batch of the data's 40 measured rows" in out and "3.00 GiB: fits" in out


def test_estimate_and_plan_read_a_config_without_output_dir(tmp_path: Path, capsys):
    """A config written to ask "will it fit?" names no run folder: only train needs one."""
    from engine.cli import estimate as command
    from engine.config import ConfigError, load_config

    raw = yaml.safe_load(run_config().to_yaml())
    del raw["output_dir"]
    path = tmp_path / "question.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert command.main([str(path), "--device", "cpu", "--free-gib", "500"]) == 0
    assert "500.00 GiB: fits" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="output_dir"):
        load_config(path)  # what train reads still names the missing run folder


def test_the_estimate_command_reads_a_comparisons_config_per_method(tmp_path: Path, capsys):
    """newuser5: `launch.py estimate` on the Compare tab's saved config.yaml refused it with seven unknown keys
    (methods, presets, ...); it now prints each method's estimate, the lines `launch.py compare` prints first."""
    from engine.cli import estimate as command

    root = Path(__file__).resolve().parents[2] / "assets"
    config = tmp_path / "compare.yaml"
    config.write_text(yaml.safe_dump({"model": {"name_or_path": str(root / "models" / "workbench-demo-5m")},
                                      "data": {"path": str(root / "datasets" / "identity_alpaca.json"),
                                               "val_size": 0.2},
                                      "train": {"max_steps": 4, "batch_size": 4, "cutoff_len": 256},
                                      "methods": ["lora", "full"]}), encoding="utf-8")
    assert command.main([str(config), "--device", "cpu", "--free-gib", "0.01"]) == 0
    said = capsys.readouterr()
    lines = said.out.splitlines()
    assert lines[0] == "memory before Start on the CPU (RAM), 0.01 GiB free:", said
    assert [line.split()[0] for line in lines[1:]] == ["lora", "full"] and all("will not fit" in line
                                                                               for line in lines[1:])
    assert float(lines[2].split()[1]) > float(lines[1].split()[1])  # full fine-tuning holds more than an adapter
