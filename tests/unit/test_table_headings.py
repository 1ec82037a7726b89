"""The Compare and Evaluate tables are headed in the visitor's language: each column's heading is the locale key
`table.COLUMN`, whose English is the column's own title (the CSV and Markdown files keep the English)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from engine.compare.table import COLUMNS as COMPARE_COLUMNS
from webui.forms import compare_table, eval_table
from webui.i18n import words

LOCALES = Path(__file__).resolve().parents[2] / "assets" / "locales"
ZH = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={})  # a Chinese browser
EVAL_COLUMNS = (*eval_table.COLUMNS, *eval_table.CALL_COLUMNS, *eval_table.GENERAL_COLUMNS, *eval_table.TOOL_COLUMNS)


def locale(name: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{name}.json").read_text(encoding="utf-8"))


def test_each_columns_english_heading_is_its_title() -> None:
    en = locale("en")
    for column in (*COMPARE_COLUMNS, *EVAL_COLUMNS):
        assert en[f"table.{column.key}"] == column.title, column.key
    assert all(en[f"table.{key}"] == key for key in ("method", "state", "model", "tool"))


def test_a_chinese_visitor_reads_the_tables_headings_in_chinese() -> None:
    heading = words(ZH)  # what the tabs pass: the page's words in the visitor's language
    compared = compare_table.table_html({"model": "m", "data": "d", "budget": "b", "rows": [], "best": {}}, heading)
    assert "<th>方法</th><th>状态</th><th>可训练参数</th>" in compared and "trainable params" not in compared
    metrics = {"models": {"base": {"loss": 1.5, "exact_match": 0.25, "tool_calls": {"per_tool": {
        "search": {"rows": 2, "name_accuracy": 1.0, "arguments_exact": 0.5, "argument_keys": 1.0}}}}}}
    evaluated = eval_table.results_html(metrics, heading)
    assert "<th>模型</th><th>损失</th><th>完全匹配</th>" in evaluated and "<th>工具</th>" in evaluated
    assert "exact match" not in evaluated and "<th>loss</th>" in eval_table.results_html(metrics)  # English default


def compared_table() -> dict:
    """A comparison's table.json as engine/compare/table.py writes it: a completed LoRA, a prefix run not started,
    the base's figures, the estimate's device."""
    def row(method: str, state: str, merges: bool, **figures: float) -> dict:
        found = dict.fromkeys((column.key for column in COMPARE_COLUMNS), None)
        return {**found, **figures, "method": method, "title": method, "state": state, "error": None, "merges": merges}

    return {"comparison": "c", "model": "m", "data": "d.json", "budget": "3 steps of 4 x 1 rows, cutoff 64, 0.2 held "
            "out, seed 42", "budget_of": {"steps": 3, "epochs": None, "batch_size": 4, "accumulation": 1,
                                          "cutoff_len": 64, "val_size": 0.2, "seed": 42},
            "rows": [row("lora", "completed", True, peak_memory_mb=586.0, exact_match=0.0, bleu=0.5),
                     row("prefix", "not started", False)],
            "best": {}, "base": {"exact_match": 0.0, "rouge_l": 0.022, "bleu": 0.31},
            "estimate": {"device": "cpu", "free_mb": 8192.0, "lengths": None}}


def test_the_compare_table_is_worded_for_a_chinese_visitor_and_states_the_base_and_the_estimate() -> None:
    """newuser2: on the Chinese page the Compare table's states (completed, not started), the merges column (yes, no)
    and the budget line above it were English, and the page left out the base's figures and the estimate's
    explanation that table.md states under the table."""
    page = compare_table.table_html(compared_table(), words(ZH))
    assert "<td>已完成</td>" in page and "<td>未开始</td>" in page and "completed" not in page
    assert "<td>是</td>" in page and "<td>否</td>" in page and "<td>yes</td>" not in page
    assert "3 步，每步 4 x 1 行，截断长度 64，留出 0.2，随机种子 42" in page and "held out" not in page
    assert "基座模型在同样的留出行上：完全匹配 0.000，ROUGE-L 0.022，BLEU 0.31。" in page
    assert "预估峰值：" in page and "8.00 GiB" in page
    english = compare_table.table_html(compared_table())
    assert "The base model on the same held-out rows: exact match 0.000, ROUGE-L 0.022, BLEU 0.31." in english
    assert "3 steps of 4 x 1 rows, cutoff 64, 0.2 held out, seed 42" in english and "<td>not started</td>" in english
    assert "Estimated peak: the estimate before Start, from config.json alone" in english


def test_the_results_tables_scroll_sideways_in_a_box_of_their_own() -> None:
    """newuser2: the Compare table (1601 px in a 1216 px page) ran off the right edge, its last columns unreachable,
    and on the Chinese page its headings broke one character a line: both tables now sit in a box that scrolls
    sideways (.wb-table-scroll, whose headings do not wrap)."""
    from webui.components.render import CSS

    compared = compare_table.table_html(compared_table(), words(ZH))
    evaluated = eval_table.results_html({"models": {"base": {"loss": 1.0}}})
    for page in (compared, evaluated):
        assert "<div class='wb-scroll wb-table-scroll'><table class='wb-eval-table" in page
    assert ".wb-table-scroll th { white-space: nowrap; }" in CSS and ".wb-scroll { overflow-x: auto;" in CSS


def test_memory_is_counted_in_mib_in_the_table_as_in_the_estimate() -> None:
    """newuser2: the table said "586 MB" where the estimate box said "0.57 GiB" of the same MiB figures."""
    page = compare_table.table_html(compared_table())
    assert "<th>peak memory MiB</th>" in page and "<td>586</td>" in page and " MB<" not in page
    assert compare_table.memory_size(586.0) == "586 MiB" and compare_table.memory_size(2048.0) == "2.00 GiB"
    assert all("MB" not in column.title for column in COMPARE_COLUMNS)


def test_the_compare_forms_refusals_and_the_estimates_part_are_in_the_visitors_language() -> None:
    import pytest

    from webui.i18n import sentence

    with pytest.raises(compare_table.CompareFormError) as refused:
        compare_table.compare_config("m", "d.json", [], [], 3, 2, 64, 0.2)
    assert sentence(ZH, refused.value) == "请至少选择一种要比较的方法。"
    with pytest.raises(compare_table.CompareFormError) as refused:
        compare_table.compare_config("m", "", ["lora"], [], 3, 2, 64, 0.2)
    assert sentence(ZH, refused.value) == "请选择一个数据集：每种方法都在它上面训练。"
    with pytest.raises(compare_table.CompareFormError) as refused:
        compare_table.presets_from_rows([["lora", "fast", "{}"]])
    assert sentence(ZH, refused.value).startswith("lora 的预设无法读取")
    with pytest.raises(compare_table.CompareFormError) as refused:
        compare_table.presets_from_rows([["lora", "0.1", "[1]"]])
    assert sentence(ZH, refused.value) == 'lora 的选项必须是 JSON 对象，例如 {"r": 16}。'
    found = {"device": "cpu", "free_mb": 8192.0, "methods": {"lora": {"total_mb": 586.0, "verdict": "fits",
                                                                       "largest": "activations"}}}
    box = compare_table.estimate_html(found, words(ZH), lambda mib: f"{mib / 1024:.2f} GiB")
    assert "<td>激活值</td>" in box and "activations" not in box and "<td>586 MiB</td>" in box


def test_the_row_view_is_headed_in_the_visitors_language_and_the_models_keep_their_order() -> None:
    """newuser2: the row-by-row view's headings (row, prompt, reference) were English on the Chinese page, and the
    table listed the models alphabetically (metrics.json's keys are sorted), not in the order they were picked."""
    headers, _ = eval_table.row_view([], ["base", "sft-lora", "dpo"], say=words(ZH))
    assert headers == ["行", "提示", "参考答案", "base", "sft-lora", "dpo"]
    assert eval_table.row_view([], ["base"])[0][:3] == ["row", "prompt", "reference"]
    metrics = {"models": {"base": {"loss": 2.0}, "dpo": {"loss": 1.0}, "sft-lora": {"loss": 1.5}},
               "order": ["base", "sft-lora", "dpo"]}
    page = eval_table.table_html(metrics)
    assert page.index("<td>sft-lora</td>") < page.index("<td>dpo</td>")
    assert eval_table.model_names({"models": {"a": {}, "base": {}, "b": {}}}) == ["base", "a", "b"]  # older files
    assert eval_table.table_csv(metrics).splitlines()[1].startswith("base,")
