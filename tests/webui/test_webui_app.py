"""The page builds, the web process never imports torch, both languages are complete, and paths from
the page cannot leave the workspace."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.jobs.events import STATES
from webui.components.render import RUN_HEADERS
from webui.context import AppContext
from webui.forms import datasets
from webui.forms import fields as form_fields
from webui.forms.sampling import SAMPLING_OPTIONS
from webui.jobs.paths import PathError

ROOT = Path(__file__).resolve().parents[2]


def test_web_process_imports_no_torch(tmp_path: Path):
    code = (
        "import sys; from webui.app import build_app; from webui.context import AppContext; "
        f"build_app(AppContext.create({str(tmp_path)!r})); "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'datasets') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_locales_are_complete():
    en = json.loads((ROOT / "assets/locales/en.json").read_text(encoding="utf-8"))
    zh = json.loads((ROOT / "assets/locales/zh.json").read_text(encoding="utf-8"))
    used = set()
    for path in (ROOT / "webui").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt\(\s*"([a-z_.]+)"\)', source))
        # run-time messages: message(request, "key"), say("key"), text("key"), words(request)("key")
        used |= set(re.findall(r'\b(?:message\(\w+,|say\(|text\(|words\(\w+\)\()\s*"([a-z_.]+)"\s*[,)]', source))
    used |= {f"field.{o.key}" for o in form_fields.OPTIONS} | {f"help.{o.key}" for o in form_fields.OPTIONS}
    used |= {f"{kind}.{o.key}" for o in SAMPLING_OPTIONS for kind in ("field", "help")}  # the Chat tab's
    used |= {f"choice.{c}" for c in form_fields.STOP_BY.choices}
    used |= {f"state.{s}" for s in STATES}
    used |= {"runs.col." + h.replace(" ", "_") for h in RUN_HEADERS}
    used |= {"field.data.format", "help.data.format", "field.method.name", "help.method.name"}
    from tests.unit.test_table_headings import COMPARE_COLUMNS, EVAL_COLUMNS
    from webui.i18n import translations

    used |= {f"table.{column.key}" for column in (*COMPARE_COLUMNS, *EVAL_COLUMNS)}  # headings: say(f"table.{key}")

    tables = translations()
    for lang in ("en", "zh"):
        missing = sorted(k for k in used if not tables[lang].get(k))
        assert not missing, f"{lang} lacks {missing}"
    assert set(k for k in en if not k.startswith("help.")) <= set(zh)
    for key, text in tables["zh"].items():
        if not key.startswith(("field.method.", "chat.top_", "field.train.packing")):
            same_in_chinese = key in ("field.method.lora_alpha", "field.method.lora_dropout", "table.rouge_l",
                                      "table.bleu", "engine.log.part.logits",  # the metrics' and tensors' own names
                                      "engine.log.report_to")  # a config key, with its values
            # "{what}：{advice}", "{total} GiB（{parts}）": no words but placeholders and units
            same_in_chinese |= not re.search(r"[A-Za-z]", re.sub(r"\{\w+\}|\b[KMG]iB\b", "", text))
            assert re.search(r"[\u4e00-\u9fff]", text) or same_in_chinese, key


def test_paths_from_the_page_stay_inside(tmp_path: Path):
    ctx = AppContext.create(tmp_path / "ws")
    secret = tmp_path / "secret.jsonl"
    secret.write_text("{}\n")
    for bad in (str(secret), str(ctx.workspace / ".." / "secret.jsonl"), "/etc/passwd"):
        with pytest.raises(PathError):
            ctx.readable(bad)
    link = ctx.uploads / "link.jsonl"
    link.symlink_to(secret)
    with pytest.raises(PathError):
        ctx.readable(link)  # a symlink out of the workspace is followed, then refused
    with pytest.raises(PathError):
        ctx.local_model_dir(str(tmp_path))
    assert ctx.local_model_dir("Qwen/Qwen2.5-0.5B") is None  # a hub id, not a path
    with pytest.raises(PathError):
        ctx.runs.run_dir("../../secret")
    with pytest.raises(PathError):
        ctx.writable(ctx.assets / "datasets")  # samples are read-only
    assert ctx.readable(ctx.assets / "locales" / "en.json")


def test_upload_is_copied_under_a_safe_name(tmp_path: Path):
    source = tmp_path / "../evil name;rm -rf.jsonl"
    source = tmp_path / "evil name;rm -rf.jsonl"
    source.write_text('{"text": "x"}\n')
    saved = datasets.save_upload(source, tmp_path / "uploads")
    assert saved.parent == tmp_path / "uploads" and re.fullmatch(r"[A-Za-z0-9._-]+", saved.name)
    assert datasets.save_upload(source, tmp_path / "uploads") == saved  # the same bytes again: no second copy
    bad = tmp_path / "x.exe"
    bad.write_text("")
    with pytest.raises(PathError):
        datasets.save_upload(bad, tmp_path / "uploads")


def test_example_segments_and_histogram():
    report = {"example": {"text": "user: hi\nassistant: hello", "spans": [[20, 25]]}}
    assert datasets.example_segments(report) == [("user: hi\nassistant: ", None), ("hello", "trained")]
    rows = datasets.length_histogram([5, 6, 7, 100], cutoff_len=50)
    assert sum(r["rows"] for r in rows) == 4 and rows[-1] == {"tokens": "91–100", "rows": 1, "fits": "over cutoff"}


def test_launch_options_and_exposure_warning():
    from webui.app import exposure_warning, parse_args

    args = parse_args([])
    expected = ("127.0.0.1", 7860, "workspace", False, None)
    assert (args.host, args.port, args.workspace, args.share, args.auth) == expected
    args = parse_args(["--host", "0.0.0.0", "--port", "9000", "--auth", "u:p", "--share", "--workspace", "/w"])
    assert (args.host, args.port, args.auth, args.share, args.workspace) == ("0.0.0.0", 9000, "u:p", True, "/w")
    assert exposure_warning("127.0.0.1", False, None) is None
    assert exposure_warning("localhost", False, None) is None
    assert "without --auth" in exposure_warning("0.0.0.0", False, None)
    assert "without --auth" in exposure_warning("127.0.0.1", True, None)
    assert exposure_warning("0.0.0.0", False, ("u", "p")) is None


def test_crafted_paths_fail_in_handlers(tmp_path: Path):
    from tests.train_tab import train_tab
    from webui.jobs.monitor import JobSnapshot
    from webui.tabs import chat
    from webui.tabs.train import data as train_data
    ctx = AppContext.create(tmp_path / "ws")
    panel = train_tab(ctx).data
    summary = list(train_data.inspect(ctx, panel, "", "/etc/passwd", [], "auto", 512, "truncate"))[-1][panel.summary]
    assert "outside the workspace" in summary
    for missing in ("uploads/gone.jsonl", "uploads%2Fgone.jsonl", str(ctx.uploads / "gone.jsonl")):
        summary = list(train_data.inspect(ctx, panel, "", missing, [], "auto", 512, "truncate"))[-1][panel.summary]
        assert "does not exist (any more): upload it again" in summary and "Errno" not in summary, summary
    with pytest.raises(PathError):
        chat.resolve_source(ctx, None, "/etc")
    with pytest.raises(PathError):
        chat.resolve_source(ctx, "../../etc", "")
    outside = tmp_path / "elsewhere.zip"
    outside.write_bytes(b"PK")
    job = ctx.exports.job("r-float16")  # a result naming a file elsewhere offers nothing: downloads are the job's own
    snap = JobSnapshot(name=job.name, state="completed", result={"zip": str(outside), "adapter_zip": str(outside)})
    assert ctx.exports.downloads(job, snap) == (None, None)
    with pytest.raises(PathError):
        ctx.exports.job("../../elsewhere")


def test_language_chosen_in_settings_beats_the_browsers():
    import gradio as gr

    from webui.i18n import LANGUAGE_COOKIE, language, message

    english_browser = gr.Request(headers={"accept-language": "en-US,en;q=0.9"}, cookies={})
    assert language(english_browser) == "en"
    chose_chinese = gr.Request(headers={"accept-language": "en-US,en;q=0.9"}, cookies={LANGUAGE_COOKIE: "zh-CN"})
    assert language(chose_chinese) == "zh" and message(chose_chinese, "tab.train") == "训练"
    chose_english = gr.Request(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={LANGUAGE_COOKIE: "en"})
    assert language(chose_english) == "en"
    assert language(gr.Request(headers={"accept-language": "zh-TW"}, cookies={})) == "zh"
