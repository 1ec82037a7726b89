"""The run log's known lines in the visitor's language: the engine writes them in English to the log file and
stdout and with their key and values in events.jsonl; the page's log box (Train, Runs, Export, Evaluate) words
every line it can show in Chinese (its frame, the state, the level, the engine's keyed sentence), while a line
without a key (a library's words, a newer engine's) keeps its English inside the frame. In-process: no engine
process, no model."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

from engine.data.sources import Mixed, Part
from engine.jobs.events import LEVELS, STATES, Log, Metrics, Progress, Status, parse, read_events, to_line
from engine.jobs.reporter import JobReporter
from engine.jobs.rundir import RunDir
from engine.sentences import ENGLISH, said, worded
from webui.components.render import log_text
from webui.i18n import translations, words
from webui.jobs.monitor import JobMonitor, format_event

ROOT = Path(__file__).resolve().parents[2]
ZH = SimpleNamespace(headers={"accept-language": "en-US"}, cookies={"wb_lang": "zh-CN"})
EN = SimpleNamespace(headers={"accept-language": "en-US"}, cookies={})


def test_a_keyed_line_is_english_in_the_log_file_and_keyed_in_its_event(tmp_path: Path):
    run = RunDir(tmp_path / "run")
    line = said("engine.log.tokenized", train=36, val=4, truncated=0, dropped=1, cutoff=128,
                cached=said("engine.log.from_cache"))
    with JobReporter(run, echo=False) as reporter:
        reporter.info(line)
        reporter.info("a library's own words")
    english = ("tokenized: 36 train / 4 validation rows, 0 truncated and 1 dropped at cutoff_len 128 (read from the "
               "tokenized-rows cache, engine.data.tokcache)")
    assert english in run.log.read_text(encoding="utf-8")  # the file people paste into issues stays English
    written = [json.loads(text) for text in run.events.read_text(encoding="utf-8").splitlines()]
    assert written[0]["message"] == english and written[0]["message_key"] == "engine.log.tokenized"
    assert written[0]["message_values"]["cached"]["key"] == "engine.log.from_cache"
    assert "message_key" not in written[1]
    keyed, plain = read_events(run.events)
    assert keyed.message.key == "engine.log.tokenized" and keyed.message.values["dropped"] == 1
    assert plain.message.key is None and parse(to_line(plain)).message == "a library's own words"


def lines_of_a_run(tmp_path: Path) -> JobMonitor:
    """A monitor over events of every kind a run writes: each state, each level, keyed and unkeyed lines."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir(parents=True)
    events = [Status(state=state) for state in STATES if state != "failed"]
    events += [Log(message=said("engine.log.trainable", trainable="24,576", total="5,598,464", percent="0.4390"),
                   level=level) for level in LEVELS]
    events += [Log(message="Some weights of the model were not initialized"),  # a library's line: no key
               Progress(step=1, total=5), Metrics(step=1, loss=1.5), Metrics(step=2, values={"rewards/margins": 0.3}),
               Status(state="failed", error=said("engine.data.empty", name="facts.json"))]
    run.events.write_text("".join(to_line(event) + "\n" for event in events) + "not json\n", encoding="utf-8")
    return JobMonitor(run)


def test_every_line_the_log_box_shows_is_worded_in_chinese(tmp_path: Path):
    snap = lines_of_a_run(tmp_path).refresh()
    english = log_text(snap, "Traceback (most recent call last):", words(EN)).splitlines()
    chinese = log_text(snap, "Traceback (most recent call last):", words(ZH)).splitlines()
    table = translations()["zh"]
    assert english == log_text(snap, "Traceback (most recent call last):").splitlines()  # English: as written
    # each state and level, the library's line, two metrics, the damaged line, the output's header and line
    assert len(chinese) == len(english) == len(STATES) + len(LEVELS) + 1 + 2 + 1 + 2
    for en, zh in zip(english[:-1], chinese[:-1], strict=True):  # every framed line differs: no key left unworded
        assert en != zh, en
    assert english[-1] == chinese[-1] == "Traceback (most recent call last):"  # the engine's output as printed
    assert english[0].endswith(" status  queued") and chinese[0].endswith(" 状态  排队中")
    assert english[4].endswith(" status  training") and chinese[4].endswith(" 状态  训练中")
    trainable = "可训练参数：24,576 || 全部参数：5,598,464 || 可训练占比%：0.4390"
    assert any(line.endswith(f"信息 {trainable}") for line in chinese)
    assert any(line.endswith(f"警告 {trainable}") for line in chinese)
    assert any(line.endswith("信息 Some weights of the model were not initialized") for line in chinese)
    assert any(line.endswith("指标 第 1 步 loss=1.5") for line in chinese)
    assert any(line.endswith("status  failed: facts.json is empty: add at least one row.") for line in english)
    assert any(line.endswith(f"状态  失败：{worded(said('engine.data.empty', name='facts.json'), table)}")
               for line in chinese)
    assert "--- 引擎输出的最后几行 ---" in chinese and "--- last lines of the engine's output ---" in english
    assert any("events.jsonl 有一行已损坏，已跳过" in line for line in chinese)


def test_each_frame_state_and_level_has_its_chinese():
    table = translations()["zh"]
    for state in STATES:
        line = format_event(Status(state=state, t=0))
        assert worded(line, table) != str(line), f"zh.json lacks state.{state}"
    for level in LEVELS:
        line = format_event(Log(message=said("engine.log.chatml"), level=level, t=0))
        assert level not in worded(line, table), f"zh.json lacks engine.log.level.{level}"
    for key in (key for key in ENGLISH if key.startswith("engine.log.")):  # the run log's keys: each has its zh
        assert table.get(key), f"zh.json lacks {key}"


def test_the_dataset_and_resume_lines_keep_their_english_and_have_a_key():
    one = Mixed([Part("identity.json", "alpaca", [{}] * 40, 40)], "concat", 0)
    assert one.summary() == "dataset identity.json: 40 rows, format alpaca"
    assert worded(one.summary(), translations()["zh"]) == "数据集 identity.json：40 行，格式 alpaca"
    cut = Mixed([Part("a.json", "alpaca", [{}] * 20, 40)], "concat", 0)
    assert worded(cut.summary(), translations()["zh"]) == "数据集 a.json：40 行中的 20 行，格式 alpaca"
    from engine.train.output_dir import incomplete

    removed = said("engine.log.removed_resuming", incomplete=incomplete([Path("checkpoint-20")]),
                   checkpoint="checkpoint-10")
    assert removed == "checkpoint-20 is incomplete (killed while it was written): removed; resuming from checkpoint-10"
    assert worded(removed, translations()["zh"]) == ("checkpoint-20 不完整（写入时被终止）：已删除；"
                                                     "从 checkpoint-10 继续训练")


RECIPE = ("engine/train/recipe.py", "engine/train/objectives.py", "engine/train/output_dir.py")


def test_the_training_recipe_says_every_line_with_a_key():
    """A line the recipe writes as a literal or an f-string would reach the page's log box in English alone."""
    unkeyed = []
    for name in RECIPE:
        for node in ast.walk(ast.parse((ROOT / name).read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "info"
                    and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))):
                unkeyed.append(f"{name}:{node.lineno}")
    assert not unkeyed, f"log lines without a key (use said()): {unkeyed}"


def test_a_saved_checkpoint_is_a_keyed_line():
    from engine.train.trainer import EventCallback

    said_lines: list = []
    callback = EventCallback(SimpleNamespace(info=said_lines.append), stop=None, throughput=None)
    callback.on_save(None, SimpleNamespace(global_step=4), None)
    assert said_lines == ["checkpoint-4 saved (a run stopped or killed later resumes from it)"]
    assert said_lines[0].key == "engine.log.checkpoint_saved"
    assert worded(said_lines[0], translations()["zh"]) == "已保存 checkpoint-4（之后停止或被终止的运行可从这里继续）"
