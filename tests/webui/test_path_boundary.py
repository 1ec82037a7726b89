"""The path boundary (webui.jobs.boundary) tried through the page's own entry points.

Every request parameter that names a path (the Train form's model and dataset on Start, preview and save, the
model line, the trainable count, the dataset inspection, the Chat tab's run and adapter folder, the run names
of Stop, Cancel, Delete, Run again and Export, the export names) and every path inside a file that a request
supplies or points at (an uploaded or placed adapter_config.json's base model; a run's config.yaml model and
data.path when it is chatted with, run again, exported or queued) is tried with `..`, absolute, `~`,
URL-encoded and symlink variants of a model folder, a dataset, an adapter and a run folder outside the
workspace. 0 escapes: each is refused with a sentence, and while it is, an audit hook sees no process
started and nothing under the outside folder opened, listed or deleted. `--allow-path DIR` lets that folder in.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest

from engine.chat.plan import ChatError as EngineChatError
from engine.chat.plan import plan_load
from engine.config import RunConfig
from engine.jobs.rundir import RunDir
from tests.train_tab import train_tab
from tests.webui.test_webui_chat_client import FAKE_WORKER
from webui.context import AppContext
from webui.forms import mapping as forms
from webui.forms.fields import MAX_STEPS, STOP_BY
from webui.jobs.chat_client import ChatClient
from webui.jobs.commands import REPO_ROOT
from webui.jobs.paths import PathError
from webui.jobs.runs import RunError
from webui.jobs.scheduler import Scheduler
from webui.tabs import chat
from webui.tabs import export as export_tab
from webui.tabs.runs import run_again
from webui.tabs.runs import tab as runs_tab
from webui.tabs.train import count as train_count
from webui.tabs.train import data as train_data
from webui.tabs.train import follow as train_follow
from webui.tabs.train import handlers
from webui.tabs.train import sources as train_sources
from webui.tabs.train.panels import TrainTab

LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 32,
         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 64}
ROW = '{"instruction": "a", "output": "b"}\n'


# ---- what "nothing escaped" means: an audit hook ------------------------------------------------------------
class Watch:
    """While on: every process started, and every file under `folder` opened, listed, renamed or deleted."""

    FILE_EVENTS = {"open", "os.listdir", "os.scandir", "shutil.rmtree", "os.remove", "os.rmdir", "os.rename"}
    PROCESS_EVENTS = {"subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork"}
    FOLLOWED = {"open", "os.listdir", "os.scandir"}

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.seen: list[tuple[str, str]] = []
        self._busy = False

    def __call__(self, event: str, args: tuple) -> None:
        if self.folder is None or self._busy or event not in self.FILE_EVENTS | self.PROCESS_EVENTS:
            return
        self._busy = True  # resolve() below must not watch itself
        try:
            if event in self.PROCESS_EVENTS:
                self.seen.append((event, repr(args[:2])))
            elif args and isinstance(args[0], str | bytes | os.PathLike):
                path = Path(os.fsdecode(args[0]))
                # open and list follow a symlink; remove, rename and rmtree act on the link itself
                path = path.resolve() if event in self.FOLLOWED else path.parent.resolve() / path.name
                if path == self.folder or path.is_relative_to(self.folder):
                    self.seen.append((event, str(path)))
        finally:
            self._busy = False


WATCH = Watch()
sys.addaudithook(WATCH)  # for the whole test process; it records only inside `watching`


@contextmanager
def watching(folder: Path) -> Iterator[list[tuple[str, str]]]:
    WATCH.folder, WATCH.seen = folder.resolve(), []
    try:
        yield WATCH.seen
    finally:
        WATCH.folder = None


# ---- the world: a workspace, and a model, dataset, adapter and run folder outside it ------------------------
@dataclass
class World:
    ctx: AppContext
    outside: Path
    model: Path  # outside/model: config.json + weights
    data: Path  # outside/data.jsonl
    adapter: Path  # outside/adapter: adapter_config.json naming outside/model
    run: Path  # outside/run: a finished run folder
    good_data: Path  # a dataset inside the workspace
    launched: list[tuple[str, ...]]  # engine commands the scheduler started
    tab: TrainTab  # the Train tab built as the page builds it (its handlers return {component: value})


def make_world(tmp_path: Path, tab: TrainTab, allowed: tuple[Path, ...] = ()) -> World:
    outside = tmp_path / "outside"
    model, adapter = outside / "model", outside / "adapter"
    for folder in (model, adapter):
        folder.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(LLAMA))
    (model / "model.safetensors").write_bytes(b"secret weights")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(model)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"secret adapter")
    (outside / "data.jsonl").write_text(ROW)
    (outside / "cfg.yaml").write_text(json.dumps({"model": {"name_or_path": "tiny"}, "data": {"path": "data.jsonl"},
                                                  "output_dir": "runs/x"}))
    launched: list[tuple[str, ...]] = []

    def engine(*args: str) -> list[str]:
        launched.append(args)
        return [sys.executable, "-c", "pass"]

    workspace = tmp_path / "ws"
    ctx = AppContext.create(workspace, scheduler=Scheduler(workspace, engine=engine), allowed=allowed)
    ctx.chat = ChatClient(tmp_path / "worker.log", argv=lambda: [sys.executable, str(fake_worker(tmp_path)),
                                                                 str(tmp_path / "received"), str(REPO_ROOT)])
    good_data = ctx.uploads / "good.jsonl"
    good_data.write_text(ROW)
    run = write_run(outside / "run", model=str(model), data=str(outside / "data.jsonl"))
    (ctx.workspace / "models" / "link").symlink_to(model)
    (ctx.uploads / "link.jsonl").symlink_to(outside / "data.jsonl")
    (ctx.uploads / "adapter-link").symlink_to(adapter)
    (ctx.runs.runs_dir / "evil").symlink_to(run)
    (ctx.exports.exports_dir / "evil").symlink_to(run)
    (ctx.configs / "link.yaml").symlink_to(outside / "cfg.yaml")
    return World(ctx, outside, model, outside / "data.jsonl", adapter, run, good_data, launched, tab)


def fake_worker(tmp_path: Path) -> Path:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    return script


def write_run(folder: Path, model: str, data: str | list[str], state: str = "completed") -> Path:
    """A finished LoRA run as the engine leaves it (config.yaml written as given, without resolving it)."""
    (folder / "adapter").mkdir(parents=True)
    config = RunConfig.model_validate({"model": {"name_or_path": model}, "data": {"path": data},
                                       "output_dir": str(folder)})
    (folder / "config.yaml").write_text(config.to_yaml())
    (folder / "status.json").write_text(json.dumps({"state": state, "pid": None, "error": None}))
    (folder / "train.log").write_text("trained\n")
    (folder / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": model}))
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"adapter")
    return folder


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> TrainTab:
    """One Train tab for every test: the handlers use its components as keys only."""
    return train_tab(AppContext.create(tmp_path_factory.mktemp("tab")))


@pytest.fixture
def world(tmp_path: Path, tab: TrainTab, monkeypatch) -> Iterator[World]:
    monkeypatch.setenv("HOME", str(tmp_path))  # "~/outside/..." leads outside
    made = make_world(tmp_path, tab)
    yield made
    made.ctx.chat.stop()


# ---- the variants of one outside path -------------------------------------------------------------------------
def encoded(text: str) -> str:
    return text.replace(".", "%2e").replace("/", "%2f")


def variants(world: World, target: Path, base: Path, link: Path | None) -> dict[str, str]:
    """Ways a request can name `target` (outside): relative to `base` (where the page takes relative paths)
    and to the engine's folder, absolute, ~, URL-encoded, and a symlink inside the workspace leading to it."""
    home = Path(os.environ["HOME"])
    dotdot = os.path.relpath(target, base)
    found = {"dotdot": dotdot, "dotdot-engine-cwd": os.path.relpath(target, REPO_ROOT), "absolute": str(target),
             "absolute-dotdot": f"{world.ctx.workspace}/../{target.relative_to(world.ctx.workspace.parent)}",
             "home": "~/" + str(target.relative_to(home)), "url-encoded": encoded(dotdot),
             "url-encoded-absolute": encoded(str(target)), "url-mixed": dotdot.replace("/", "%2F")}
    if link is not None:
        found |= {"symlink": str(link), "symlink-relative": os.path.relpath(link, base)}
    return found


COMMON = ["dotdot", "dotdot-engine-cwd", "absolute", "absolute-dotdot", "home", "url-encoded", "url-encoded-absolute",
          "url-mixed"]
LINKED = [*COMMON, "symlink", "symlink-relative"]
CRAFTED = "crafted"  # the run folder a test writes into the workspace with a crafted config.yaml

# what a parameter names -> (its variants, the names of those variants)
KINDS: dict[str, tuple[Callable[[World], dict[str, str]], list[str]]] = {
    # a name shaped like a hub id that is a folder to the engine (it runs in the repository) is no hub id
    "model": (lambda w: variants(w, w.model, w.ctx.workspace, w.ctx.workspace / "models" / "link") | {
        "hub-shaped-local": "tests"}, [*LINKED, "hub-shaped-local"]),
    "data": (lambda w: variants(w, w.data, w.ctx.workspace, w.ctx.uploads / "link.jsonl"), LINKED),
    "adapter": (lambda w: variants(w, w.adapter, w.ctx.workspace, w.ctx.uploads / "adapter-link"), LINKED),
    "config": (lambda w: variants(w, w.outside / "cfg.yaml", w.ctx.workspace, w.ctx.configs / "link.yaml"), LINKED),
    "run": (lambda w: variants(w, w.run, w.ctx.runs.runs_dir, None) | {"symlink": "evil", "dotdot-name": "..",
                                                                       "slash": "a/b"},
            [*COMMON, "symlink", "dotdot-name", "slash"]),
    # paths inside a crafted run's config.yaml: relative ones are relative to the run folder
    "model-in-run": (lambda w: variants(w, w.model, w.ctx.runs.runs_dir / CRAFTED, w.ctx.workspace / "models" / "link")
                     | {"hub-shaped-local": "tests"}, [*LINKED, "hub-shaped-local"]),
    "data-in-run": (lambda w: variants(w, w.data, w.ctx.runs.runs_dir / CRAFTED, w.ctx.uploads / "link.jsonl"),
                    LINKED),
}


# ---- the page's entry points: each returns the refusal's sentence, or fails the test ----------------------------
def refusal(call: Callable[[], object]) -> str:
    """The sentence of a refusal raised as the page raises them (gr.Error, or PathError/RunError before it)."""
    try:
        result = call()
    except (gr.Error, PathError, RunError) as error:
        return str(error)
    pytest.fail(f"not refused: {result!r}")


def shown_error(html: str) -> str:
    """A refusal the page shows in place (the model line, the count, the inspection)."""
    assert "wb-error" in html, f"not refused: {html!r}"
    return html


def form(model: str, dataset: str, more: tuple[str, ...] = ()) -> list:
    """The Train form's inputs (model, dataset, more datasets, format, method, every option) for a one-step LoRA."""
    options = forms.widget_values({**forms.defaults(), STOP_BY: "steps", MAX_STEPS: 1})
    return [model, dataset, list(more), "auto", "lora", *options]


def start(world: World, model: str, dataset: str, more: tuple[str, ...] = ()) -> str:
    before = sorted(os.listdir(world.ctx.runs.runs_dir))
    sentence = refusal(lambda: train_follow.start(world.ctx, world.tab.monitor, None, "", *form(model, dataset, more)))
    assert sorted(os.listdir(world.ctx.runs.runs_dir)) == before  # no run folder was written
    return sentence


def preview(world: World, model: str, dataset: str, more: tuple[str, ...] = ()) -> str:
    shown = handlers.preview(world.ctx, world.tab.config, "x", *form(model, dataset, more))[world.tab.config.yaml]
    assert shown.startswith("# "), f"not refused: {shown!r}"
    return shown + refusal(lambda: handlers.save_config(world.ctx, "x", *form(model, dataset, more)))


def count(world: World, model: str) -> str:
    return shown_error(list(train_count.count_trainable(world.ctx, None, *form(model, str(world.good_data))))[-1])


def inspect(world: World, model: str, dataset: str) -> str:
    panel = world.tab.data
    return shown_error(list(train_data.inspect(world.ctx, panel, model, dataset, [], "auto", 512, "truncate"))[-1][
        panel.summary])


def delete(world: World, name: str) -> str:
    """Delete: refused, or (a symlinked run) the link alone goes; the folder it leads to stays."""
    try:
        runs_tab.ask_delete(world.ctx, [name])
        runs_tab.delete_confirmed(world.ctx, [name])
    except gr.Error as error:
        return str(error)
    assert (world.run / "config.yaml").is_file() and not (world.ctx.runs.runs_dir / name).exists()
    return "the link alone was deleted"


def cancel(world: World, name: str) -> str:
    sentence = refusal(lambda: train_follow.ask_cancel(world.ctx, name, None))
    return sentence + refusal(lambda: train_follow.cancel(world.ctx, world.tab.monitor, name, None))


def rerun(world: World, name: str) -> str:
    """Run again: it may ask (a symlinked run is listed as failed), and then it is refused."""
    with contextlib.suppress(gr.Error):  # refused at once: the confirmation is tried below all the same
        run_again.ask_rerun(world.ctx, [name])
    return refusal(lambda: run_again.rerun_confirmed(world.ctx, [name]))


def follow_export(world: World, name: str) -> str:
    assert export_tab.follow(world.ctx, name)[4] is None  # nothing is followed
    return refusal(lambda: world.ctx.exports.job(name))


# request parameter -> (what it names, how the page receives it)
REQUESTS: dict[str, tuple[str, Callable[[World, str], str]]] = {
    "start-model": ("model", lambda w, v: start(w, v, str(w.good_data))),
    "start-dataset": ("data", lambda w, v: start(w, "tiny", v)),
    "preview-and-save-model": ("model", lambda w, v: preview(w, v, str(w.good_data))),
    "preview-and-save-dataset": ("data", lambda w, v: preview(w, "tiny", v)),
    "model-line": ("model", lambda w, v: shown_error(handlers.show_model(w.ctx, v, None))),
    "trainable-count": ("model", count),
    "inspect-dataset": ("data", lambda w, v: inspect(w, "", v)),
    "inspect-tokenizer": ("model", lambda w, v: inspect(w, v, str(w.good_data))),
    # a dataset among the more datasets, after one inside
    "start-more-datasets": ("data", lambda w, v: start(w, "tiny", str(w.good_data), (v,))),
    "preview-and-save-more-datasets": ("data", lambda w, v: preview(w, "tiny", str(w.good_data), (v,))),
    "inspect-more-datasets": ("data", lambda w, v: shown_error(train_sources.datasets_line(
        w.ctx, [str(w.good_data), v], {"rows": 1, "format": "alpaca"}, "auto", None))),
    "load-saved-config": ("config", lambda w, v: refusal(lambda: handlers.load_saved_config(w.ctx, w.tab, v))),
    "chat-adapter-folder": ("adapter", lambda w, v: refusal(lambda: chat.load(w.ctx, None, v, mode="cpu"))),
    "chat-run": ("run", lambda w, v: refusal(lambda: chat.load(w.ctx, v, "", mode="cpu"))),
    "stop": ("run", lambda w, v: refusal(lambda: train_follow.stop(w.ctx, v)) + refusal(
        lambda: runs_tab.stop_selected(w.ctx, [v]))),
    "cancel": ("run", cancel),
    "delete": ("run", delete),
    "rerun": ("run", rerun),
    "export": ("run", lambda w, v: refusal(lambda: export_tab.export(w.ctx, v, "float16", 2))),
    "export-name": ("run", follow_export),
}


# ---- paths inside files a request supplies or points at -------------------------------------------------------
def uploaded_adapter(world: World, base: str) -> str:
    """An adapter_config.json uploaded through the dataset upload (.json is a dataset suffix), then chatted with."""
    source = world.outside.parent / "browser" / "adapter_config.json"
    source.parent.mkdir(exist_ok=True)
    source.write_text(json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}))
    handlers.upload_dataset(world.ctx, str(source))
    assert (world.ctx.uploads / "adapter_config.json").is_file()
    return refusal(lambda: chat.load(world.ctx, None, str(world.ctx.uploads), mode="cpu"))


def placed_adapter(world: World, base: str) -> str:
    folder = world.ctx.workspace / "models" / "placed"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    (folder / "adapter_model.safetensors").write_bytes(b"adapter")
    return refusal(lambda: chat.load(world.ctx, None, str(folder), mode="cpu"))


def crafted_run(world: World, state: str, model: str = "tiny", data: str | None = None) -> Path:
    return write_run(world.ctx.runs.runs_dir / CRAFTED, model=model, data=data or str(world.good_data), state=state)


def chat_with_run(world: World, model: str) -> str:
    crafted_run(world, "completed", model=model)
    return refusal(lambda: chat.load(world.ctx, CRAFTED, "", mode="cpu"))


def rerun_run(world: World, **paths: str) -> str:
    run = crafted_run(world, "failed", **paths)
    sentence = refusal(lambda: run_again.rerun_confirmed(world.ctx, [CRAFTED]))
    assert (run / "train.log").is_file() and RunDir(run).weights_dir() is not None  # nothing of it was deleted
    return sentence


def export_run(world: World, **paths: str) -> str:
    crafted_run(world, "completed", **paths)
    status, *_ = export_tab.export(world.ctx, CRAFTED, "float16", 2)
    assert world.ctx.exports.latest(CRAFTED).read_status()["state"] == "failed", status
    return status


def queued_run(world: World, **paths: str) -> str:
    run = RunDir(crafted_run(world, "queued", **paths))
    assert world.ctx.jobs.tick() == []
    assert run.read_status()["state"] == "failed"
    return run.read_status()["error"]


FILE_PATHS: dict[str, tuple[str, Callable[[World, str], str]]] = {
    "uploaded-adapter-config-base": ("model", uploaded_adapter),
    "placed-adapter-config-base": ("model", placed_adapter),
    "run-config-model-chat": ("model-in-run", chat_with_run),
    "run-config-model-rerun": ("model-in-run", lambda w, v: rerun_run(w, model=v)),
    "run-config-model-export": ("model-in-run", lambda w, v: export_run(w, model=v)),
    "run-config-model-queued": ("model-in-run", lambda w, v: queued_run(w, model=v)),
    "run-config-data-rerun": ("data-in-run", lambda w, v: rerun_run(w, data=v)),
    "run-config-data-export": ("data-in-run", lambda w, v: export_run(w, data=v)),
    "run-config-data-queued": ("data-in-run", lambda w, v: queued_run(w, data=v)),
    "run-config-data-list-rerun": ("data-in-run", lambda w, v: rerun_run(w, data=[str(w.good_data), v])),
    "run-config-data-list-queued": ("data-in-run", lambda w, v: queued_run(w, data=[str(w.good_data), v])),
}
CASES = [(entry, variant) for table in (REQUESTS, FILE_PATHS) for entry, (kind, _) in table.items()
         for variant in KINDS[kind][1]]


@pytest.mark.parametrize(("entry", "variant"), CASES, ids=[f"{e}:{v}" for e, v in CASES])
def test_no_path_a_request_names_escapes(world: World, entry: str, variant: str):
    kind, act = {**REQUESTS, **FILE_PATHS}[entry]
    value = KINDS[kind][0](world)[variant]
    with watching(world.outside) as seen:
        sentence = act(world, value)
    print(f"{entry} {variant} {value!r}: {sentence}")
    assert sentence.strip(), "refused without a sentence"
    assert seen == [], f"{entry} with {value!r} reached outside the workspace: {seen}"
    assert world.launched == [] and not world.ctx.chat.running  # no engine process, no chat worker
    assert (world.model / "config.json").is_file() and (world.run / "config.yaml").is_file()  # nothing deleted


def test_allow_path_lets_a_folder_outside_in(tmp_path: Path, tab: TrainTab, monkeypatch: pytest.MonkeyPatch):
    """launch.py --allow-path DIR: a model, dataset and adapter under DIR are used where they are, and every
    process is handed the checked folder (a symlink named by where it leads)."""
    world = make_world(tmp_path, tab, allowed=(tmp_path / "outside",))
    # this world's model folder has no tokenizer, which the pre-start inspection (tests/webui/test_prestart.py)
    # would refuse: here only the paths handed to the engine are checked
    monkeypatch.setattr(train_follow, "check_start", lambda *_: None)
    ctx, model, data = world.ctx, str(world.model.resolve()), str(world.data.resolve())
    shown = train_follow.start(ctx, tab.monitor, None, "", *form("models/link", str(world.data)))
    run = RunDir(ctx.runs.runs_dir / shown[tab.monitor.current])
    try:
        assert world.launched == [("run", str(run.path), "--kind", "train")]  # the engine was started on it
        assert (run.read_config().model.name_or_path, run.read_config().data.path) == (model, data)
        counted = list(train_count.count_trainable(ctx, None, *form(str(world.model), str(world.data))))[-1]
        assert counted.startswith("trainable: ")  # counted from the config.json outside
        chat.load(ctx, None, str(world.adapter), mode="cpu")  # its adapter_config.json names outside/model
        assert ctx.chat.loaded["model"] == model and ctx.chat.loaded["adapters"] == [chat.TUNED]
        assert ctx.boundary.model(world.outside.name, (tmp_path,)) == str(world.outside.resolve())
    finally:
        ctx.chat.stop()
        ctx.jobs.wait(run, timeout=30)
    with pytest.raises(PathError, match="outside the workspace"):  # beside the allowed folder: still outside
        ctx.boundary.readable(tmp_path / "browser")


def test_a_hub_dataset_id_passes_like_a_hub_model_id(tmp_path: Path, tab: TrainTab):
    """A dataset shaped like a hub id that is no path in the workspace is left to the engine (which downloads it,
    or says in one sentence that it cannot); a name with a dataset file's extension never is one."""
    world = make_world(tmp_path, tab)
    ctx, good = world.ctx, str(world.good_data)
    boundary = ctx.boundary
    assert boundary.dataset("org/some-dataset") == "org/some-dataset"
    assert boundary.dataset("uploads/good.jsonl") == str(world.good_data.resolve())  # a path in the workspace
    assert boundary.dataset("uploads") == str(ctx.uploads.resolve())  # hub-shaped, but a folder there
    shown = handlers.preview(ctx, tab.config, "x", *form("tiny", good, ("org/some-dataset",)))[tab.config.yaml]
    assert f"- {good}\n  - org/some-dataset\n" in shown, shown
    config = RunConfig.model_validate({"model": {"name_or_path": "tiny"}, "output_dir": str(ctx.runs.runs_dir / "a"),
                                       "data": {"path": [good, {"path": "org/some-dataset", "fraction": 0.5}]}})
    assert boundary.config(config).data == config.data
    for relative in ("uploads/good.jsonl", "missing.jsonl"):  # a run config's local paths must be absolute
        data = config.data.model_copy(update={"path": [good, relative]})
        with pytest.raises(PathError, match="relative path"):
            boundary.config(config.model_copy(update={"data": data}))


def test_allow_path_option(tmp_path: Path, capsys):
    from webui.app import main
    from webui.options import parse_args

    assert parse_args([]).allow_path == []
    assert parse_args(["--allow-path", "/a", "--allow-path", "/b"]).allow_path == ["/a", "/b"]
    assert main(["--allow-path", str(tmp_path / "missing"), "--workspace", str(tmp_path)]) == 2
    assert f"--allow-path {tmp_path / 'missing'} is not a folder" in capsys.readouterr().err


def test_the_chat_worker_refuses_folders_outside_the_roots_itself(tmp_path: Path, tab: TrainTab, monkeypatch):
    """Defense in depth: the page sends its boundary's folders with every load, and the worker's plan step
    (engine.chat.plan) refuses an adapter or a local base outside them before reading anything there."""
    world = make_world(tmp_path, tab)
    roots = [str(root) for root in world.ctx.boundary.roots]
    placed = world.ctx.workspace / "models" / "placed"
    placed.mkdir()
    (placed / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "tiny"}))
    refused = [(None, {"t": str(world.adapter)}), (None, {"t": str(world.ctx.uploads / "adapter-link")}),
               (str(world.model), {"t": str(placed)}), (str(world.ctx.workspace / "models" / "link"), {})]
    with watching(world.outside) as seen:
        for model, adapters in refused:
            with pytest.raises(EngineChatError, match="outside the folders this server may read"):
                plan_load(model, adapters, roots=roots)
    assert seen == []
    assert plan_load(None, {"t": str(placed)}, roots=roots).model == "tiny"
    assert plan_load(str(world.model), {"t": str(placed)}, roots=[*roots, str(world.outside)]).model == str(world.model)
    assert plan_load(str(world.model), {}).model == str(world.model)  # the terminal's chat (no roots) is not limited
    sent: dict = {}
    client = AppContext.create(tmp_path / "ws").chat
    monkeypatch.setattr(client, "start", lambda _cpu_only=False: None)
    monkeypatch.setattr(client, "call", lambda _op, **fields: sent.update(fields) or {"model": fields["model"]})
    client.load("tiny", {})
    assert sent["roots"] == roots
