"""The run log's lines beyond the recipe's (a run's batching, loss and kernels, memory check, distributed strategy,
nodes and trackers; an export's, an evaluation's and a comparison's steps) are keyed sentences with a Chinese text:
the log file keeps their English, the page's log box words them. In-process: no engine process, no model loaded."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from engine.config import RunConfig
from engine.data.sources import Mixed, Part
from engine.estimate import methods as estimates
from engine.estimate.memory import GIB, MemoryEstimate
from engine.eval.job import general_table
from engine.jobs.rundir import RunDir
from engine.sentences import Sentence, worded
from engine.train import kernels, nodes, objectives, strategy, trackers
from engine.train.batching import Shape, choose
from engine.train.logits import plan
from engine.train.preflight import check_fits
from engine.train.trainer import plan_batching
from webui.i18n import translations

ROOT = Path(__file__).resolve().parents[2]

# Every module that writes a line the page's log box can show (a reporter's info, or the `log`/`say`/`info`/`warn`
# callable a job hands down): none may write a literal or an f-string, which would reach the page in English alone.
WRITERS = (*sorted(str(path.relative_to(ROOT)) for path in (ROOT / "engine/train").glob("*.py")),
           "engine/export/merge.py", "engine/export/verify.py", "engine/model/loading.py",
           "engine/eval/job.py", "engine/eval/testset.py", "engine/eval/models.py",
           "engine/compare/job.py", "engine/compare/estimates.py", "engine/estimate/lengths.py")
CALLABLES = {"log", "say", "info", "warn"}  # the line-writing callables a job hands down
LINE_TYPES = {"Choice", "KernelChoice", "Decision"}  # results whose text field is a run log line


def plain_text(node: ast.AST) -> bool:
    """Whether `node` is English written as it is: a str literal, an f-string, or a sum or join of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.BinOp) and (plain_text(node.left) or plain_text(node.right))


def unkeyed_lines(source: str) -> list[int]:
    """The line numbers of `source` where a run log line is written as plain text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        writes = ((isinstance(func, ast.Name) and func.id in CALLABLES | LINE_TYPES)
                  or (isinstance(func, ast.Attribute) and func.attr in CALLABLES
                      and not (isinstance(func.value, ast.Name) and func.value.id in ("log", "logger", "logging"))))
        if writes and any(plain_text(arg) for arg in node.args):
            found.append(node.lineno)
    return found


def test_the_scan_finds_a_line_written_as_plain_text():  # the scan below can fail
    assert unkeyed_lines('reporter.info(f"evaluating {name}")\nlog("wrote " + out)\nself.log(said("k"))\n'
                         'Choice(False, "batching: off")\nlog.info("state: %s", state)\n') == [1, 2, 4]


def test_no_job_writes_a_log_line_without_a_key():
    unkeyed = [f"{name}:{line}" for name in WRITERS
               for line in unkeyed_lines((ROOT / name).read_text(encoding="utf-8"))]
    assert not unkeyed, f"log lines without a key (use said()): {unkeyed}"


def said_in_chinese(line: Any) -> str:
    """The Chinese of a run log line, which must be a keyed sentence whose key (and each part's) zh.json words."""
    table = translations()["zh"]
    assert isinstance(line, Sentence) and line.key, f"not a keyed sentence: {line!r}"
    parts = [line, *(value for value in line.values.values() if isinstance(value, Sentence))]
    for part in parts:
        assert part.key and table.get(part.key), f"zh.json lacks {part.key} ({part!r})"
    chinese = worded(line, table)
    assert chinese != str(line), f"not worded: {line!r}"
    return chinese


def run_config(tmp_path: Path, method: str = "lora", **train: Any) -> RunConfig:
    return RunConfig(model={"name_or_path": "m"}, method={"name": method}, data={"path": "d.json"},
                     output_dir=str(tmp_path / "run"), train=train, distributed={"nproc_per_node": 2})


def tracker_lines(config: RunConfig, run: RunDir) -> list[str]:
    with mock.patch.dict(os.environ):  # the defaults prepare() sets are this test's alone
        return trackers.prepare(config, run)


def test_a_runs_setup_lines_are_keyed_and_worded(tmp_path: Path):
    shape = Shape(params=10**6, trainable=10**4, hidden=64, layers=2)
    packed, padded = choose([30, 40] * 8, 4, 128, shape), choose([8, 128] * 8, 4, 512, shape)
    lines = [packed.reason, padded.reason, choose([30, 40] * 8, 4, 128, shape, varlen=True).reason,
             plan_batching(run_config(tmp_path, packing="off"), None, 0, []).reason,
             plan_batching(run_config(tmp_path, "prompt", packing="auto"), None, 0, []).reason,
             plan_batching(run_config(tmp_path, batch_size=1), None, 0, []).reason,
             objectives._plan_pairs(None, None, 0, []).reason, objectives._plan_unpaired(None, None, 0, []).reason,
             kernels.choose(run_config(tmp_path, kernels="none"), None).line,
             kernels.choose(run_config(tmp_path, stage="dpo"), None).line, kernels.FUSED,
             plan(SimpleNamespace(config=SimpleNamespace(model_type="unknown")))[1],
             *tracker_lines(run_config(tmp_path, report_to=["tensorboard"]), RunDir(tmp_path / "run")),
             strategy.choose(run_config(tmp_path), None, None, "cpu")[1],
             strategy.choose(run_config(tmp_path, "full"), None, None, "cpu")[1]]
    for line in lines:
        said_in_chinese(line)
    assert "auto chose DDP in 2 processes" in lines[-1] and "分布式：auto 选择了 DDP" in said_in_chinese(lines[-1])
    assert said_in_chinese(lines[3]) == "批处理：按长度分组填充（已关闭）"


def test_the_memory_check_line_keeps_its_english_and_words_its_parts():
    step = MemoryEstimate(device="cpu", tokens=2048, longest=512, weights=GIB // 2, gradients=0, optimizer=0,
                          activations=GIB // 4, logits=0, attention=0)
    line = check_fits(step, 20 * GIB, "RAM", batch_size=4, cutoff_len=512, packing=False)
    assert line == ("memory estimate: one step needs about 0.75 GiB (weights 0.50, activations 0.25) with 2,048 "
                    "tokens in the largest batch; 20.0 GiB of RAM is free beside the loaded weights")
    assert said_in_chinese(line).startswith("内存估计：一步约需 0.75 GiB（权重 0.50，激活值 0.25）")


def test_the_nodes_decision_joins_the_strategy_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    decision, _ = nodes.decide([nodes.Report(0, "a", sees_node_0=False), nodes.Report(1, "b", sees_node_0=False)],
                               "auto", False)
    monkeypatch.setattr(nodes, "_decided", decision)
    line = nodes.with_decision(strategy.choose(run_config(tmp_path), None, None, "cpu")[1])
    assert line.endswith("; nodes: the 2 nodes each keep a run folder of their own (no shared filesystem): each node "
                         "keeps the checkpoints a resume needs in its own folder; node 0 keeps the events, status and "
                         "final weights")
    assert "节点：这 2 个节点各自有自己的运行文件夹" in said_in_chinese(line)


def test_an_evaluations_and_a_comparisons_lines_are_keyed_and_worded():
    found = {"device": "gpu", "free_mb": 8192, "lengths": {"rows": 40, "longest": 90},
             "methods": {"lora": {"total_mb": 1024, "verdict": "will not fit", "largest": "activations"},
                         "prefix": None}}
    head, lora, prefix = estimates.lines(found)
    assert lora == "  lora    1.00 GiB  will not fit (largest part: activations)"
    assert said_in_chinese(lora) == "  lora    1.00 GiB  放不下（占用最多：激活值）"
    for line in (head, prefix, general_table({"prompts": 3, "models": {}})[0]):
        said_in_chinese(line)


def test_several_datasets_are_one_keyed_line():
    both = Mixed([Part("a.json", "alpaca", [{}] * 4, 4), Part("b.jsonl", "openai", [{}] * 8, 8)], "concat", 0)
    assert both.summary() == "dataset a.json: 4 rows (alpaca), b.jsonl: 8 rows (openai) — 12 rows, concatenated"
    assert said_in_chinese(both.summary()) == ("数据集 a.json：4 行（alpaca），b.jsonl：8 行（openai），共 12 行，"
                                               "依次拼接")
