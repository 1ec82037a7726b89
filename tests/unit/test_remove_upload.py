"""Issue 24 item 6: an upload (a failed one too) can be removed from the dataset list, from the Train tab, and
nothing else can: a bundled set, a file outside the uploads folder, or an upload a queued run reads."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from webui.context import AppContext
from webui.tabs.train import handlers as h


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(tmp_path / "ws")


def upload(ctx: AppContext, name: str, text: str = "[]") -> str:
    ctx.uploads.mkdir(parents=True, exist_ok=True)
    (ctx.uploads / name).write_text(text)
    return str((ctx.uploads / name).resolve())


def refused(ctx: AppContext, dataset: str | None) -> str:
    with pytest.raises(gr.Error) as error:
        h.remove_upload(ctx, dataset, [])
    return str(error.value.message)


def test_an_upload_is_removed_and_no_longer_listed(ctx):
    empty, kept = upload(ctx, "empty.json"), upload(ctx, "kept.jsonl", '{"text": "a"}\n')
    dataset, more = h.remove_upload(ctx, empty, [empty, kept])
    assert not Path(empty).exists() and Path(kept).exists()
    assert dataset["value"] is None and more["value"] == [kept]
    listed = [path for _, path in dataset["choices"]]
    assert empty not in listed and kept in listed and listed == [path for _, path in more["choices"]]


def test_only_uploads_are_removed(ctx, tmp_path):
    bundled = next(path for label, path in h.dataset_choices(ctx.uploads, ctx.assets) if label.startswith("samples/"))
    outside = tmp_path / "mine.json"
    outside.write_text("[]")
    for dataset in (bundled, str(outside), str(ctx.uploads / ".." / "uploads" / ".." / "x.json")):
        assert "is not an upload, so it is not removed here" in refused(ctx, dataset)
    assert Path(bundled).exists() and outside.exists()
    assert refused(ctx, None) == "Choose the uploaded dataset to remove first."


def test_an_upload_a_queued_run_reads_is_kept(ctx):
    data = upload(ctx, "used.jsonl", '{"instruction": "a", "output": "b"}\n')
    run = ctx.runs.runs_dir / "waiting"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(json.dumps({"model": {"name_or_path": "tiny"}, "data": {"path": data},
                                                 "train": {"max_steps": 1}, "output_dir": str(run)}))
    (run / "status.json").write_text(json.dumps({"schema": 2, "state": "queued"}))
    assert ctx.runs.queued() == ["waiting"]
    assert refused(ctx, data) == ("used.jsonl is not removed: run waiting is queued or training on it; remove it once "
                                  "the run has ended.")
    assert Path(data).exists()
