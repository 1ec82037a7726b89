"""The Compare and Evaluate tables are headed in the visitor's language: each column's heading is the locale key
`table.COLUMN`, whose English is the column's own title (the CSV and Markdown files keep the English)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.compare.table import COLUMNS as COMPARE_COLUMNS
from webui.forms import compare_table, eval_table

LOCALES = Path(__file__).resolve().parents[2] / "assets" / "locales"
EVAL_COLUMNS = (*eval_table.COLUMNS, *eval_table.CALL_COLUMNS, *eval_table.GENERAL_COLUMNS, *eval_table.TOOL_COLUMNS)


def locale(name: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{name}.json").read_text(encoding="utf-8"))


def test_each_columns_english_heading_is_its_title() -> None:
    en = locale("en")
    for column in (*COMPARE_COLUMNS, *EVAL_COLUMNS):
        assert en[f"table.{column.key}"] == column.title, column.key
    assert all(en[f"table.{key}"] == key for key in ("method", "state", "model", "tool"))


def test_a_chinese_visitor_reads_the_tables_headings_in_chinese() -> None:
    zh = locale("zh")
    heading = lambda key, _title: zh[key]  # noqa: E731 - what the tabs pass: say(key) in the visitor's language
    compared = compare_table.table_html({"model": "m", "data": "d", "budget": "b", "rows": [], "best": {}}, heading)
    assert "<th>方法</th><th>状态</th><th>可训练参数</th>" in compared and "trainable params" not in compared
    metrics = {"models": {"base": {"loss": 1.5, "exact_match": 0.25, "tool_calls": {"per_tool": {
        "search": {"rows": 2, "name_accuracy": 1.0, "arguments_exact": 0.5, "argument_keys": 1.0}}}}}}
    evaluated = eval_table.results_html(metrics, heading)
    assert "<th>模型</th><th>损失</th><th>完全匹配</th>" in evaluated and "<th>工具</th>" in evaluated
    assert "exact match" not in evaluated and "<th>loss</th>" in eval_table.results_html(metrics)  # English default
