"""The engine's sentences in the visitor's language (engine.sentences): every key the engine says exists in both
locales with the same values; a failed run's status keeps the English sentence and writes its key and values
beside it; the page's reader (the monitor, status.json, a refused Start) words it in Chinese with its values
filled; an engine command's key survives stderr; and a sentence without a key, or with one the page does not know,
is shown as the engine wrote it."""

from __future__ import annotations

import json
import pickle
import re
import string
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.config_read import VALUE_PROBLEMS
from engine.data.readers import read_records
from engine.estimate.memory import MemoryEstimate
from engine.jobs.events import read_events
from engine.jobs.failures import DataError, explain, explain_exit
from engine.jobs.reporter import JobReporter
from engine.jobs.rundir import RunDir
from engine.sentences import ENGLISH, Sentence, heard, said, tell, worded
from engine.train import preflight
from engine.train.preflight import GIB, MemoryCheckError, check_fits
from webui.components.render import progress_html
from webui.forms.prestart import StartRefusedError
from webui.i18n import message, sentence, translations, words
from webui.jobs.monitor import JobMonitor

ROOT = Path(__file__).resolve().parents[2]
ZH = SimpleNamespace(headers={"accept-language": "en-US"}, cookies={"wb_lang": "zh-CN"})  # chose 简体中文
EN = SimpleNamespace(headers={"accept-language": "en-US"}, cookies={})


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_the_engine_says_is_in_both_locales_with_the_same_values():
    zh = json.loads((ROOT / "assets/locales/zh.json").read_text(encoding="utf-8"))
    tables = translations()
    for key, english in ENGLISH.items():
        assert tables["en"][key] == english, key  # the page's English is the engine's own
        assert key in zh, f"zh.json lacks {key}"
        assert fields(zh[key]) == fields(english), key
    said_keys, named = set(), set()
    for path in [*(ROOT / "engine").rglob("*.py"), *(ROOT / "webui").rglob("*.py")]:  # the page says a few too
        if path.name not in ("sentences.py", "sentences_more.py", "sentences_log.py"):
            source = path.read_text(encoding="utf-8")
            said_keys |= set(re.findall(r'\bsaid\(\s*"([\w.]+)"', source))  # said("engine.data.empty", ...)
            named |= set(re.findall(r'"(engine\.[\w.]+)"', source))  # key = "..." if ... else "...": said(key)
    named |= {f"engine.memory.part.{part}" for part in preflight.PARTS.values()}  # said(f"...{PARTS[part]}")
    named |= {f"engine.value.{kind}" for kind in VALUE_PROBLEMS}  # said(f"engine.value.{kind}"): pydantic's types
    assert len(said_keys) > 150 and not said_keys - set(ENGLISH), sorted(said_keys - set(ENGLISH))
    assert not set(ENGLISH) - named, f"keys no engine code says: {sorted(set(ENGLISH) - named)}"


def failed_run(path: Path, error: BaseException) -> RunDir:
    """A run folder whose job failed with `error`, written as the lifecycle writes it (explain, the reporter)."""
    run = RunDir(path)
    with JobReporter(run, echo=False) as reporter:
        reporter.status("starting")
        reporter.status("failed", error=explain(error, "train", run.path))
    return run


def test_a_failed_runs_status_is_read_by_the_page_in_chinese(tmp_path: Path):
    empty = tmp_path / "facts.json"
    empty.write_text("  \n")
    with pytest.raises(DataError) as refused:
        read_records(empty)
    run = failed_run(tmp_path / "run", refused.value)

    status = json.loads(run.status.read_text(encoding="utf-8"))  # the English stays for the CLI and the logs
    assert status["error"] == "facts.json is empty: add at least one row."
    assert (status["error_key"], status["error_values"]) == ("engine.data.empty", {"name": "facts.json"})
    snap = JobMonitor(run).refresh()  # the page's reader of the events
    shown = progress_html(snap, words(ZH))
    assert "facts.json 是空文件：请至少添加一行。" in shown and "is empty" not in shown
    assert "facts.json is empty: add at least one row." in progress_html(snap, words(EN))
    assert sentence(ZH, run.read_status()["error"]) == "facts.json 是空文件：请至少添加一行。"  # status.json's


def test_the_memory_refusal_and_a_killed_run_are_worded_with_their_parts(tmp_path: Path):
    step = MemoryEstimate(device="cpu", tokens=4096, longest=512, weights=GIB, gradients=0, optimizer=0,
                          activations=30 * GIB, logits=GIB, attention=0)
    with pytest.raises(MemoryCheckError) as refused:
        check_fits(step, 2 * GIB, said("engine.memory.ram"), batch_size=64, cutoff_len=512, packing=False)
    english = str(refused.value)
    assert english == ("This configuration cannot fit: one step needs about 32.0 GiB (the activations of the largest "
                       "batch alone takes 30.0 GiB) and 2.0 GiB of RAM is free: lower train.batch_size (now 64), or "
                       "lower train.cutoff_len (now 512).")
    run = failed_run(tmp_path / "run", refused.value)
    assert run.read_status()["error"] == english
    chinese = sentence(ZH, run.read_status()["error"])
    assert chinese == ("此配置放不下：一步训练约需 32.0 GiB（最大批次的激活值单独就占 30.0 GiB），"
                       "内存只剩 2.0 GiB 可用："
                       "调小 train.batch_size（当前为 64），或调小 train.cutoff_len（当前为 512）。")

    killed = explain_exit(-9, "", oom_killed=True)  # what the scheduler writes for an engine the OOM killer ended
    assert killed.startswith("The kernel's out-of-memory killer ended the engine process (SIGKILL); out of memory")
    assert sentence(ZH, killed) == ("内核的内存不足（OOM）杀手结束了引擎进程（SIGKILL）；"
                                    "内存（RAM）不足：请调小 "
                                    "train.batch_size 或 train.cutoff_len，或使用更小的模型。")
    event = read_events(run.events)[-1]  # a status event read back is a Sentence with its key again
    assert event.error.key == "engine.memory.cannot_fit" and sentence(ZH, event.error) == chinese


def test_a_refused_start_names_the_engines_reason_in_chinese():
    from engine.config_stage import shape_problem

    reason = shape_problem("sft", "pairs.jsonl", "preference")
    refused = StartRefusedError("msg.start_data_refused", name="pairs.jsonl", reason=reason)
    shown = message(ZH, refused.key, **refused.values)
    assert shown == ("未开始：pairs.jsonl 无法用于训练。"
                     "pairs.jsonl 包含偏好对（prompt、chosen、rejected），"
                     "监督微调和预训练无法读取："
                     "请把 train.stage 设为 dpo、orpo、simpo 或 kto，或选择一个 SFT 数据文件。")
    assert message(EN, refused.key, **refused.values) == f"Not started: pairs.jsonl cannot be trained. {reason}"


def test_a_key_crosses_an_engine_commands_stderr_and_a_pickle(monkeypatch):
    """The page asks for the key (SAID_ENV, as webui.jobs.commands.engine_env sets it); a person's stderr has the
    sentence alone."""
    from engine.sentences import SAID, SAID_ENV

    bad = said("engine.data.bad_jsonl_line", name="a.jsonl", number=2, reason="Expecting value", column=1)
    monkeypatch.delenv(SAID_ENV, raising=False)
    alone = StringIO()
    tell(bad, prefix="error: ", file=alone)
    assert alone.getvalue() == f"error: {bad}\n" and SAID not in alone.getvalue()
    monkeypatch.setenv(SAID_ENV, "1")
    err = StringIO()
    print("Traceback (most recent call last): ...", file=err)
    tell(bad, prefix="error: ", file=err)
    found = heard(err.getvalue(), "no reason")
    assert found == "error: a.jsonl line 2 is not valid JSON (Expecting value at column 1): write exactly one JSON " \
                    "object per line."
    assert found.key == "engine.data.bad_jsonl_line" and found.values["number"] == 2
    assert heard("a plain last line\n", "no reason").key is None and heard("", "no reason") == "no reason"
    again = pickle.loads(pickle.dumps(DataError(said("engine.data.empty", name="x.csv"))))
    assert again.sentence.key == "engine.data.empty" and str(again) == "x.csv is empty: add at least one row."


def test_without_a_key_the_page_shows_the_engines_words():
    table = translations()["zh"]
    assert worded(Sentence("ValueError: something odd"), table) == "ValueError: something odd"
    unknown = Sentence("A newer engine's sentence.", "engine.newer.sentence", {})
    assert worded(unknown, table) == "A newer engine's sentence."
    short = Sentence("facts.json is empty: add at least one row.", "engine.data.empty", {})  # its value went missing
    assert worded(short, table) == "facts.json is empty: add at least one row."
    assert worded("plain text", table) == "plain text"


def test_the_advice_a_refusal_ends_with_is_worded_too():
    from engine.estimate.advice import Advice

    advice = Advice({"batch_size": (64, 8), "gradient_accumulation_steps": (1, 8)}, None).sentence()
    assert advice == ("set train.batch_size 8 (now 64), train.gradient_accumulation_steps 8 (now 1): the estimate "
                      "says it fits, the same 64 rows per update")
    assert sentence(ZH, advice) == ("设置 train.batch_size 为 8（当前为 64）、train.gradient_accumulation_steps "
                                    "为 8（当前为 1）：估算显示这样放得下，每次更新仍是 64 行")


def test_a_bad_row_is_worded_with_its_field_and_problem():
    from engine.data import formats

    with pytest.raises(DataError) as refused:
        formats.normalise([{"instruction": "hi", "output": "yes"}, {"instruction": "hi", "output": " "}], "alpaca",
                          "a.json")
    assert str(refused.value) == ("a.json row 2: field 'output' is empty: write the answer the model should learn, "
                                  "or remove the row.")
    assert sentence(ZH, refused.value) == "a.json 第 2 行：字段 'output' 为空：请填写模型应学会的回答，或删除这一行。"


def test_a_tool_call_and_a_preference_row_are_worded_with_their_problem():
    from engine.data import formats
    from engine.data.preference import normalise_pairs
    from engine.data.unpaired import normalise_unpaired

    row = {"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "{oops"}]}
    with pytest.raises(DataError) as refused:
        formats.normalise([row], "sharegpt", "tools.json")
    assert str(refused.value) == ("tools.json row 1: field 'conversations[1].value' is not valid JSON (Expecting "
                                  "property name enclosed in double quotes at column 2): fix the JSON.")
    assert sentence(ZH, refused.value) == ("tools.json 第 1 行：字段 'conversations[1].value' 不是有效的 JSON（第 2 "
                                           "列：Expecting property name enclosed in double quotes）：请修正这段 JSON。")
    with pytest.raises(DataError) as refused:
        normalise_pairs([{"prompt": "2+2?", "chosen": "4", "rejected": "4"}], "pairs.jsonl")
    assert str(refused.value) == ("pairs.jsonl row 1: field 'rejected' is the same reply as 'chosen': a pair teaches "
                                  "nothing unless its replies differ, fix or remove the row.")
    assert sentence(ZH, refused.value) == ("pairs.jsonl 第 1 行：字段 'rejected' 与 'chosen' 是同一个回复：只有两个"
                                           "回复不同，偏好对才有可学的东西，请修改或删除这一行。")
    with pytest.raises(DataError) as refused:  # a part with its own key (the field) is worded too
        normalise_pairs([{"prompt": [{"role": "assistant", "content": "Hi"}], "chosen": "a", "rejected": "b"}],
                        "pairs.jsonl")
    assert str(refused.value).startswith("pairs.jsonl row 1: field 'chosen (with its prompt)' must start with")
    assert sentence(ZH, refused.value).startswith("pairs.jsonl 第 1 行：字段 'chosen（连同其提示词）' 必须以 user")
    with pytest.raises(DataError) as refused:
        normalise_unpaired([{"prompt": "q", "completion": "a", "label": True}] * 2, "kto.jsonl")
    assert sentence(ZH, refused.value) == ("kto.jsonl 只有好的回复（所有 label 都是 True）：KTO 需要同时从好的和差的"
                                           "回复中学习，请添加另一种 label 的行。")


def test_an_export_an_evaluation_and_a_rating_are_refused_in_chinese(tmp_path: Path, monkeypatch):
    from engine.config import parse_config
    from engine.config_eval import JudgeConfig, eval_data_problem
    from engine.data.pairfile import PairError, pair_row
    from engine.eval.judge import JudgeError, api_key
    from engine.export.merge import ExportError, ExportResult, checked_run
    from engine.export.model_card import unmergeable_reason

    data = tmp_path / "data.json"
    data.write_text('[{"instruction": "a", "output": "b"}]')
    config = parse_config({"model": {"name_or_path": "org/model"}, "method": {"name": "lora"},
                           "data": {"path": str(data)}, "train": {"max_steps": 1}, "output_dir": str(tmp_path / "run")})
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config.write_text(config.to_yaml())
    with pytest.raises(ExportError) as refused:  # the run has no adapter/ yet
        checked_run(run, tmp_path / "out", ExportResult(), "float32", overwrite=False)
    assert str(refused.value) == f"{run.path} has no adapter/ folder: the run has not finished, so there is " \
                                 "nothing to export."
    snap = JobMonitor(failed_run(tmp_path / "export", refused.value)).refresh()  # as the Export tab reads it
    assert message(ZH, "export.msg.failed", error=snap.error) == \
        f"导出失败：{run.path} 中没有 adapter/ 文件夹：该运行尚未完成，没有可导出的内容。"

    done = json.loads(json.dumps(ExportResult(reason=unmergeable_reason("prefix")).outputs()))  # a status's result
    assert done["reason"].startswith("Prefix tuning learns virtual tokens that are fed to the model")
    assert sentence(ZH, Sentence.of(done["reason_said"])).startswith("Prefix tuning 学习的是随每个输入一起送入模型的")

    reason = eval_data_problem("pairs.jsonl", "preference")  # the Evaluate tab's refusal of a pairs file
    assert reason.startswith("pairs.jsonl holds preference pairs (prompt, chosen, rejected), but an evaluation")
    assert message(ZH, "msg.eval_data_refused", name="pairs.jsonl", reason=reason).startswith(
        "未开始：pairs.jsonl 无法用于评估。pairs.jsonl 包含偏好对（prompt、chosen、rejected），但评估读取的是")
    monkeypatch.delenv("WB_NO_SUCH_KEY", raising=False)
    with pytest.raises(JudgeError) as refused:
        api_key(JudgeConfig(base_url="http://localhost:1/v1", model="judge", api_key_env="WB_NO_SUCH_KEY"))
    assert sentence(ZH, refused.value) == ("eval.judge.api_key_env 指定的是 WB_NO_SUCH_KEY，但本进程的环境中没有设置"
                                           "它：请在开始评估前 export 它，或清空 api_key_env。")

    with pytest.raises(PairError) as refused:
        pair_row([{"role": "user", "content": "Hi"}], "Hello", "Hello ")
    assert str(refused.value) == ("The two answers are the same, so the pair would teach nothing: write a better "
                                  "answer.")
    assert sentence(ZH, refused.value) == "两个回答相同，这样的偏好对学不到东西：请写一个更好的回答。"


def test_a_chat_load_failure_and_a_dead_server_are_worded_on_the_page(tmp_path: Path, monkeypatch):
    from engine.chat.plan import ChatError, plan_load
    from engine.jobs.events import Status, parse, to_line
    from engine.sentences import SAID_ENV
    from webui.jobs.chat_client import ChatWorkerError
    from webui.jobs.serving import ServeManager

    with pytest.raises(ChatError) as refused:
        plan_load(None, {"mine": str(tmp_path / "gone")})
    event = parse(to_line(Status(state="failed", error=refused.value.sentence, id=1)))  # the worker's line, read
    shown = ChatWorkerError(event.error)  # what the chat client raises for it; the Chat tab's toast words it
    assert str(shown) == f"Adapter 'mine': {tmp_path / 'gone'} does not exist."
    assert sentence(ZH, shown) == f"适配器 'mine'：{tmp_path / 'gone'} 不存在。"

    monkeypatch.setenv(SAID_ENV, "1")  # as webui.jobs.commands.engine_env sets it for the server
    err = StringIO()
    tell(said("engine.serve.port_in_use", port=8000, host="127.0.0.1"), prefix="error: ", file=err)  # engine serve
    (tmp_path / "serve.log").write_text("INFO starting\n" + err.getvalue())
    server = ServeManager(tmp_path / "serve.log")
    server._proc = SimpleNamespace(returncode=2, poll=lambda: 2)  # its process, ended with exit code 2
    died = server.state().error  # what the Chat tab's serving line shows
    assert died == ("The server stopped (exit code 2): port 8000 on 127.0.0.1 is already in use: stop that server "
                    "or choose another port with --port.")
    assert sentence(ZH, died) == ("服务器已停止（退出码 2）：127.0.0.1 上的端口 8000 已被占用：请停止那个服务器，"
                                  "或用 --port 选择另一个端口。")
