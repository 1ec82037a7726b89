"""The Export tab for a run whose method cannot be merged (prefix, prompt, P-tuning): the dtype choice is inactive
and says why before Export, and the export folder is named without a dtype (issue 24, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run_folders import write_run
from webui.context import AppContext
from webui.tabs import export as export_tab


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(tmp_path / "ws")


def test_a_prefix_run_offers_no_dtype_and_says_so_before_export(ctx):
    write_run(ctx, "prefix-demo", method="prefix")
    write_run(ctx, "lora-demo", method="lora")
    prefix = export_tab.dtype_choice(ctx, "prefix-demo")
    assert prefix["interactive"] is False and prefix["info"].startswith("Adapter only: a prefix run cannot be merged")
    lora = export_tab.dtype_choice(ctx, "lora-demo")
    assert lora["interactive"] is True and lora["info"].startswith("Precision of the merged weights.")
    assert export_tab.dtype_choice(ctx, None)["interactive"] is True


def test_a_prefix_export_folder_is_named_without_a_dtype(ctx):
    write_run(ctx, "prefix-demo", method="prefix")
    write_run(ctx, "lora-demo", method="lora")
    assert ctx.exports.start(ctx.runs.run_dir("prefix-demo"), "float16", 2).path.name == "prefix-demo-adapter"
    assert ctx.exports.start(ctx.runs.run_dir("lora-demo"), "float16", 2).path.name == "lora-demo-float16"


@pytest.mark.parametrize("method", ["full", "freeze"])
def test_a_full_or_freeze_run_exports_its_model_in_the_chosen_dtype(ctx, method):
    """A full or freeze run is a whole model (RUN/model/), written in the chosen dtype: the tab offered no dtype and
    said "Adapter only: a freeze run cannot be merged", and named its export RUN-adapter."""
    write_run(ctx, f"{method}-demo", method=method)
    choice = export_tab.dtype_choice(ctx, f"{method}-demo")
    assert choice["interactive"] is True and choice["info"].startswith("Precision of the merged weights.")
    assert ctx.exports.start(ctx.runs.run_dir(f"{method}-demo"), "bfloat16", 2).path.name == f"{method}-demo-bfloat16"


def test_an_export_of_trained_weights_is_not_called_merged(tmp_path: Path):
    """A full or freeze run has no adapter: its export is the model with the trained weights, not a merge (its
    model/export.json names the method). A LoRA export from the command line without --zip has no zips: still
    merged, and the tab says there is nothing to download (it was taken for a full run's export)."""
    import json
    from types import SimpleNamespace

    from engine.jobs.rundir import ExportDir
    from webui.i18n import words
    from webui.jobs.exports import ExportManager
    from webui.tabs import export

    def shown(method, zips, language="en-US"):
        job = ExportDir(tmp_path / f"{method}-job")
        job.out.mkdir(parents=True, exist_ok=True)
        (job.out / "export.json").write_text(json.dumps({"method": method, "merged": True}))
        ctx = SimpleNamespace(exports=SimpleNamespace(downloads=lambda _job, _snap: zips,
                                                      trained_weights=ExportManager.trained_weights))
        say = words(SimpleNamespace(headers={"accept-language": language}, cookies={}))
        return export.downloads(ctx, job, SimpleNamespace(result={"merged": True}), say)

    status, merged, adapter = shown("freeze", (Path("/x/m.zip"), None))
    assert "nothing to merge" in status and "merged" not in status and adapter["visible"] is False
    assert merged["value"] == "/x/m.zip"
    assert "无需合并" in shown("full", (Path("/x/m.zip"), None), "zh-CN")[0]
    status, merged, adapter = shown("lora", (Path("/x/m.zip"), Path("/x/a.zip")))  # merged, both offered
    assert status.startswith("Done: merged model") and adapter["value"] == "/x/a.zip"
    status, merged, adapter = shown("lora", (None, None))  # the command line's export without --zip
    assert status.startswith("Done: merged model") and "without --zip" in status
    assert merged["visible"] is False and adapter["visible"] is False
