"""The Runs tab's config comparison of selected runs (webui.components.render.config_diff_html): the keys whose
values differ, each run's value beside it, and how many keys are the same, those kept behind a closed <details>.
Before, it listed every key of the config (about 80), the few that differ only highlighted among them."""

from __future__ import annotations

import re

from engine.config import RunConfig
from webui.components.render import config_diff_html


def config(rank: int, rate: float, name: str) -> dict:
    """A run's config as its config.yaml holds it (the schema's every key; the data file is never read here)."""
    return RunConfig.model_validate({"model": {"name_or_path": "tiny"}, "method": {"r": rank},
                                     "data": {"path": "d.jsonl"}, "train": {"learning_rate": rate},
                                     "output_dir": f"runs/{name}"}).model_dump(mode="json")


def table_rows(html_text: str) -> dict[str, list[str]]:
    """key -> the cells after it, of every row of the tables in html_text."""
    return {key: re.findall(r"<td>(.*?)</td>", cells)
            for key, cells in re.findall(r"<tr class='[^']*'><td><code>([^<]+)</code></td>(.*?)</tr>", html_text)}


def test_the_comparison_shows_the_keys_that_differ_and_counts_the_rest():
    configs = {"a": config(8, 1e-4, "a"), "b": config(16, 1e-4, "b")}
    shown = config_diff_html(configs)
    differing, _, kept = shown.partition("<details")
    assert table_rows(differing) == {"method.r": ["8", "16"], "output_dir": ["runs/a", "runs/b"]}
    keys = len(table_rows(shown))
    assert f"2 keys differ, {keys - 2} are the same in every selected run" in differing
    assert keys > 20  # every key of the schema is still there, for the reader who opens the details
    same = table_rows(kept)
    assert same["train.learning_rate"] == ["0.0001"] and "method.r" not in same
    assert kept.startswith(" class='wb-compare-same'><summary>") and " open" not in kept.split(">")[0]


def test_a_key_one_run_lacks_differs_and_identical_runs_say_so():
    a, b = config(8, 1e-4, "a"), config(8, 1e-4, "a")
    del b["train"]["seed"]
    assert table_rows(config_diff_html({"a": a, "b": b}).partition("<details")[0]) == {"train.seed": ["42", "–"]}
    same = config_diff_html({"a": a, "c": config(8, 1e-4, "a")})
    assert "<table class='wb-compare wb-compare-differ'>" not in same and "0 keys differ" in same
