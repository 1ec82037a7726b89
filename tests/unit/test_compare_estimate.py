"""Issue 26: the Compare tab's and `launch.py compare`'s memory estimate per method before Start
(engine/compare/estimates.py), and the table's "estimated peak" beside the measured one. In process, no training:
the runs are folders written as training leaves them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from engine.compare import estimates as estimated
from engine.compare.table import CompareDir, csv_text, markdown, write_table
from engine.config_compare import parse_compare_config, run_config
from engine.estimate import memory, room
from engine.estimate import methods as estimates
from engine.jobs.kinds import TRAIN
from engine.jobs.rundir import write_json_atomic
from tests.unit.compare_job import events_of, run_compare

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "models" / "workbench-demo-5m"
DATA = ROOT / "assets" / "datasets" / "identity_alpaca.json"
METHODS = ["lora", "prompt", "full"]


def config_of(tmp_path: Path, batch_size: int = 2, evaluate: bool = False):
    return parse_compare_config({"model": {"name_or_path": str(DEMO)}, "data": {"path": str(DATA), "val_size": 0.2},
                                 "train": {"max_steps": 2, "batch_size": batch_size, "cutoff_len": 64},
                                 "methods": METHODS, "output_dir": str(tmp_path / "compares" / "c"),
                                 "evaluate": evaluate})


def demo() -> dict:
    return json.loads((DEMO / "config.json").read_text(encoding="utf-8"))


def test_each_method_is_estimated_on_its_own_run_config_with_a_verdict(tmp_path: Path):
    config = config_of(tmp_path)
    found = estimates.method_estimates(config, demo(), "cpu", 64 * memory.GIB)
    assert list(found["methods"]) == METHODS and found["device"] == "cpu"
    for method in METHODS:  # the run the method trains with, through the one estimate the engine checks
        step = memory.estimate(run_config(config, method, tmp_path), demo(), "cpu")
        assert found["methods"][method]["total_mb"] == step.total / memory.MIB
        assert found["methods"][method]["verdict"] == "fits"
    assert found["methods"]["full"]["total_mb"] > found["methods"]["lora"]["total_mb"]  # every weight's Adam state
    lora_mb = found["methods"]["lora"]["total_mb"]
    small = estimates.method_estimates(config, demo(), "cpu", int(lora_mb * memory.MIB * 0.5))
    assert {e["verdict"] for e in small["methods"].values()} == {"will not fit"}
    assert estimates.method_estimates(config, None, "cpu", memory.GIB)["methods"] == dict.fromkeys(METHODS)


def finish(compare: CompareDir, config, method: str, peak_mb: float) -> None:
    run = compare.run(config, method)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_status("completed", pid=None)
    write_json_atomic(run.metrics, {"trainable_params": 10, "peak_memory_mb": peak_mb})


def test_the_command_prints_the_estimates_first_and_the_table_sets_them_beside_the_measured_peak(
        tmp_path: Path, monkeypatch):
    monkeypatch.setattr(room, "gpu_free", lambda: None)
    monkeypatch.setattr(room, "memory_room", lambda: (3 * memory.GIB, "RAM"))
    config = config_of(tmp_path)
    compare = CompareDir(Path(config.output_dir))
    peaks = {"lora": 900.0, "prompt": 800.0, "full": 1000.0}

    def launch(kind, run, _stop):  # stands in for the engine process: the run completes with its measured peak
        assert kind is TRAIN  # evaluate: false
        finish(compare, config, run.name.removeprefix("c-"), peaks[run.name.removeprefix("c-")])
        return 0

    assert run_compare(compare, config, launch, monkeypatch) == 0
    said = [event["message"] for event in events_of(compare) if event["kind"] == "log"]
    assert said[0] == ("memory before Start on the CPU (RAM), 3.00 GiB free (the largest batch of the data's 40 "
                       f"measured rows, the longest {saved_lengths(compare)['longest']} tokens):")
    first_training = next(i for i, line in enumerate(said) if "training in" in line)
    assert first_training == 1 + len(METHODS) and all(" GiB  fits" in line for line in said[1:first_training])
    table = json.loads(compare.table_json.read_text(encoding="utf-8"))
    saved = json.loads((compare.path / estimated.ESTIMATE_JSON).read_text(encoding="utf-8"))
    for row in table["rows"]:
        estimate_mb = saved["methods"][row["method"]]["total_mb"]
        assert row["estimated_peak_mb"] == estimate_mb and row["peak_memory_mb"] == peaks[row["method"]]
        assert row["estimate_error_percent"] == 100 * (estimate_mb - peaks[row["method"]]) / peaks[row["method"]]
    assert table["estimate"] == {"device": "cpu", "free_mb": 3 * 1024,
                                 "lengths": {"rows": 40, "longest": 103, "cutoff_len": 64}}  # the demo's rows
    header = csv_text(table).splitlines()[0]
    assert "peak_memory_mb,estimated_peak_mb,estimate_error_percent" in header
    lora = table["rows"][0]
    assert f"| 900 | {lora['estimated_peak_mb']:.0f} | {lora['estimate_error_percent']:+.0f} |" in markdown(table)
    assert "Estimated peak: engine.estimate's figure before Start" in compare.table_md.read_text(encoding="utf-8")
    (compare.path / estimated.ESTIMATE_JSON).write_text("[1", encoding="utf-8")  # damaged: said, not guessed
    assert "No estimated peak: estimate.json cannot be read" in markdown(write_table(compare, config))


def saved_lengths(compare: CompareDir) -> dict:
    return json.loads((compare.path / estimated.ESTIMATE_JSON).read_text(encoding="utf-8"))["lengths"]


def test_the_compare_tab_shows_each_methods_verdict_before_start(tmp_path: Path, monkeypatch):
    from webui.context import AppContext
    from webui.forms.compare_table import preset_rows
    from webui.tabs import compare as tab

    monkeypatch.setattr(room, "gpu_free", lambda: None)
    ctx = AppContext.create(tmp_path / "ws")
    visitor = SimpleNamespace(session_hash="a", headers={}, cookies={}, query_params={})

    def shown(batch: int, free_gib: float) -> str:
        monkeypatch.setattr(room, "memory_room", lambda: (int(free_gib * memory.GIB), "RAM"))
        return tab.estimate(ctx, "c", str(DEMO), str(DATA), METHODS, preset_rows(), 2, batch, 64, 0.2, True,
                            visitor)

    roomy = shown(2, 64)
    assert roomy.count("data-verdict='fits'") == 3 and "the CPU (RAM)" in roomy and "64.00 GiB free" in roomy
    assert shown(2, 0.01).count("data-verdict='will not fit'") == 3
    assert tab.estimate(ctx, "c", "", str(DATA), METHODS, preset_rows(), 2, 2, 64, 0.2, True, visitor) == ""
    monkeypatch.setattr(tab, "cached_lengths", lambda *_: [20] * 40)  # the Train tab's inspection measured them
    short = shown(2, 64)
    assert "40 rows as the inspection measured them" in short and short.count("data-verdict='fits'") == 3


def test_the_compare_tabs_dataset_stays_chosen_when_the_tab_is_shown_again(tmp_path: Path):
    """Showing the tab again lists the datasets anew (an upload since) and keeps the one the visitor chose; the
    identity sample is chosen where nothing listed is (the page opening, a file removed since)."""
    from webui.context import AppContext
    from webui.tabs import compare as tab

    ctx = AppContext.create(tmp_path / "ws")
    mine = ctx.uploads / "mine.jsonl"
    mine.write_text('{"instruction": "a", "output": "b"}\n', encoding="utf-8")
    opened = tab.datasets(ctx)
    assert opened["value"].endswith("identity_alpaca.json") and str(mine.resolve()) in dict(
        (path, label) for label, path in opened["choices"])
    assert tab.datasets(ctx, str(mine.resolve()))["value"] == str(mine.resolve())
    assert tab.datasets(ctx, str(tmp_path / "gone.jsonl"))["value"].endswith("identity_alpaca.json")


def test_a_reload_shows_the_newest_comparisons_table(tmp_path: Path):
    """The page opened (a reload, a restart): the newest comparison of the workspace with its table. It showed
    "compares/config.yaml is not a comparison folder" instead (the newest was looked up by its file's name)."""
    import os

    from engine.compare.plan import write_compare_yaml
    from webui.context import AppContext
    from webui.tabs import compare as tab

    ctx = AppContext.create(tmp_path / "ws")
    assert ctx.compares.latest() is None and tab.show_latest(ctx)[0] == ""
    for age, name in ((100, "older"), (0, "newer")):
        compare = ctx.compares.compare(name)
        write_compare_yaml(compare, config_of(tmp_path).model_copy(update={"output_dir": str(compare.path)}))
        stamp = compare.config.stat().st_mtime - age
        os.utime(compare.config, (stamp, stamp))
    assert ctx.compares.latest().name == "newer"
    status, table = tab.show_latest(ctx)[:2]
    assert "wb-error" not in status and "newer" in status and "<table" in table


def test_a_comparison_under_way_names_its_state_in_the_visitors_language(tmp_path: Path):
    """newuser5: the Chinese page's Compare status read "现在：training lora" (the engine's state word)."""
    import json
    from types import SimpleNamespace

    from engine.compare.plan import write_compare_yaml
    from webui.context import AppContext
    from webui.i18n import words
    from webui.tabs import compare as tab

    ctx = AppContext.create(tmp_path / "ws")
    compare = ctx.compares.compare("running")
    write_compare_yaml(compare, config_of(tmp_path).model_copy(update={"output_dir": str(compare.path)}))
    compare.status.write_text(json.dumps({"state": "training", "note": "lora", "pid": None}), encoding="utf-8")
    chinese = words(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={}))
    status = tab.view(ctx, "running", chinese)[0]
    assert "训练中" in status and "training" not in status, status
    assert "training" in tab.view(ctx, "running", words(None))[0]


def test_a_comparison_starting_says_its_state_alone_and_the_evaluations_states_are_english_words(tmp_path: Path):
    """newuser2: before a method began the status read "Now: starting ." (the method left blank in "Now: {state}
    {method}."), and the Evaluate tab's English status read "loading_model" (the locale gave the state's identifier
    as its English word)."""
    from engine.compare.plan import write_compare_yaml
    from webui.components.render import state_label
    from webui.context import AppContext
    from webui.i18n import words
    from webui.tabs import compare as tab

    ctx = AppContext.create(tmp_path / "ws")
    compare = ctx.compares.compare("starting")
    write_compare_yaml(compare, config_of(tmp_path).model_copy(update={"output_dir": str(compare.path)}))
    compare.status.write_text(json.dumps({"state": "starting", "pid": None}), encoding="utf-8")
    status = tab.view(ctx, "starting", words(None))[0]
    assert status.endswith("Now: starting."), status
    chinese = words(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, cookies={}))
    assert tab.view(ctx, "starting", chinese)[0].endswith("当前：启动中。")
    assert state_label("loading_model", words(None)) == "loading the model"
    assert state_label("loading_data", words(None)) == "loading the data"
