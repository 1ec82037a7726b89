"""Start and Run again refuse what the page already knows will fail (webui.forms.prestart), with the engine's own
inspection: an empty dataset, a file that is gone, a hub model that cannot be reached; a good run passes, and a
failure the page has just shown is not measured again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import RunConfig
from webui.forms.prestart import StartRefusedError, check_start
from webui.jobs.commands import EngineCache, EngineCommandError, inspect_job


def config(model: str, data: str | list[str], tmp_path: Path) -> RunConfig:
    return RunConfig.model_validate({"model": {"name_or_path": model}, "method": {"name": "lora"},
                                     "data": {"path": data}, "output_dir": str(tmp_path / "run")})


def refusal(run: RunConfig, cache: EngineCache, local: Path | None) -> StartRefusedError:
    with pytest.raises(StartRefusedError) as refused:
        check_start(run, cache, local)
    return refused.value


def test_refuses_empty_missing_and_unreachable_and_passes_a_good_run(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = EngineCache(tmp_path / "cache")
    good, empty = tmp_path / "good.json", tmp_path / "empty.json"
    good.write_text(json.dumps([{"instruction": "hi", "output": "hello"}] * 3))
    empty.write_text("[]")

    check_start(config(str(tiny_model), str(good), tmp_path), cache, tiny_model)  # measured and accepted

    said = refusal(config(str(tiny_model), [str(good), str(empty)], tmp_path), cache, tiny_model)
    assert said.key == "msg.start_data_refused" and said.values["name"] == "empty.json"
    assert "no rows" in said.values["reason"]
    gone = refusal(config(str(tiny_model), str(tmp_path / "gone.json"), tmp_path), cache, tiny_model)
    assert (gone.key, gone.values) == ("msg.data_missing", {"name": "gone.json"})
    hub = refusal(config("someone/not-cached-anywhere", str(good), tmp_path), cache, None)
    assert (hub.key, hub.values) == ("msg.model_offline", {"name": "someone/not-cached-anywhere"})


def test_a_failure_just_shown_is_raised_again_without_running_the_job(tmp_path):
    cache, runs = EngineCache(tmp_path / "cache"), []
    (tmp_path / "a.json").write_text("[]")
    job = inspect_job(tmp_path / "a.json")
    object.__setattr__(job, "run", lambda _scratch: runs.append(1) or (_ for _ in ()).throw(
        EngineCommandError("a.json has no rows: add at least one row.")))
    for _ in range(2):
        with pytest.raises(EngineCommandError, match="no rows"):
            cache.answer(job, failed_within_s=60)
    assert len(runs) == 1  # the second answer reused the first failure
    with pytest.raises(EngineCommandError):
        cache.answer(job)  # without the window the job runs again (a file may have been fixed)
    assert len(runs) == 2
