"""The Train tab's config preview in the visitor's language: a refused form's problems are YAML comments worded in
Chinese (an engine's keyed sentence with its values; an unkeyed one as written), while a valid config's YAML is
the same text in every language and the file its command names loads as `launch.py train` reads it. In-process:
the handler is called with a stand-in panel (its outputs are keys), no page is built, no process started."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml

from engine.config import load_config
from webui.context import AppContext
from webui.forms import fields as ff
from webui.forms import mapping as forms
from webui.tabs.train import handlers as h

ZH = SimpleNamespace(headers={"accept-language": "en-US"}, cookies={"wb_lang": "zh-CN"})
EN = SimpleNamespace(headers={"accept-language": "zh-CN"}, cookies={"wb_lang": "en"})
PANEL = SimpleNamespace(yaml="yaml", command="command", remembered="remembered")


def shown(ctx: AppContext, dataset: Path, request: SimpleNamespace, changes: dict | None = None) -> dict:
    values = {**forms.defaults(), ff.STOP_BY: "steps", ff.MAX_STEPS: 2, **(changes or {})}
    args = ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)]
    return h.preview(ctx, PANEL, "exp", *args, request=request)


def test_a_refused_forms_comments_are_in_the_visitors_language(tmp_path: Path):
    ctx = AppContext.create(tmp_path / "ws")
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    english = shown(ctx, dataset, EN, {ff.LEARNING_RATE: 0})
    chinese = shown(ctx, dataset, ZH, {ff.LEARNING_RATE: 0})
    assert english["yaml"] == "# 'train.learning_rate' is 0.0: input should be greater than 0."
    assert chinese["yaml"] == "# 'train.learning_rate' 为 0.0：应大于 0。"
    assert english["command"] == chinese["command"] == ""
    gone = shown(ctx, ctx.uploads / "missing.jsonl", ZH)["yaml"]
    assert gone.startswith("# ") and yaml.safe_load(gone) is None  # comments only, whatever the sentence


def test_a_valid_preview_is_the_same_yaml_in_every_language_and_loads(tmp_path: Path):
    ctx = AppContext.create(tmp_path / "ws")
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    english, chinese = shown(ctx, dataset, EN), shown(ctx, dataset, ZH)
    assert chinese["yaml"] == english["yaml"] and chinese["command"] == english["command"]
    path = Path(chinese["command"].rsplit(" ", 1)[1])
    assert path.read_text(encoding="utf-8") == chinese["yaml"]
    config = load_config(path)  # what `python launch.py train FILE` reads
    assert config.train.max_steps == 2 and config.to_yaml() == chinese["yaml"]
