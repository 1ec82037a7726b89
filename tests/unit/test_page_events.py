"""No event of the page restarts itself: at most one queued `always_last` listener per trigger.

Gradio 6's page (Blocks.dispatch in its frontend) defers a trigger that comes while a queued `always_last` listener
runs, and on that run's completion sends the trigger's whole event again, starting every listener of that trigger.
Two such listeners of one trigger restart each other: a model typed into the Train tab ran the dataset inspection,
the config preview, the count and the estimate again every 0.8 s (seen in Chromium's requests), sometimes without
end, and the count's box showed a progress timer where its answer had been. webui.components.wiring.newest makes
the second a `.then` of a relay in the browser (a `.then` is sent again alone)."""

from __future__ import annotations

import collections

import pytest

from webui.app import build_app
from webui.context import AppContext


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict:
    app = build_app(AppContext.create(tmp_path_factory.mktemp("ws")))
    return {"app": app, **app.get_config_file()}


def restarting_listeners(dependencies: list[dict]) -> dict[tuple[int, str], list[int]]:
    """Each trigger (component, event) that two or more queued always_last listeners share, with their ids."""
    listeners = collections.defaultdict(list)
    for dependency in dependencies:
        queued = dependency["backend_fn"] and dependency["queue"] is not False
        if queued and dependency["trigger_mode"] == "always_last":
            for target, event in dependency["targets"]:
                if event != "then":  # a .then is sent again alone
                    listeners[(target, event)].append(dependency["id"])
    return {trigger: ids for trigger, ids in listeners.items() if len(ids) > 1}


def test_no_trigger_has_two_queued_always_last_listeners(config):
    found = restarting_listeners(config["dependencies"])
    named = {(config["app"].blocks[target].elem_id if target in config["app"].blocks else target, event):
             [config["app"].fns[index].name for index in ids] for (target, event), ids in found.items()}
    assert not named, named


def test_the_check_finds_two_listeners_of_one_trigger():
    listener = {"backend_fn": True, "queue": True, "trigger_mode": "always_last", "targets": [(6, "change")]}
    found = restarting_listeners([{**listener, "id": 1}, {**listener, "id": 2},
                                  {**listener, "id": 3, "targets": [(None, "then")]},
                                  {**listener, "id": 4, "queue": False},
                                  {**listener, "id": 5, "trigger_mode": "multiple"}])
    assert found == {(6, "change"): [1, 2]}



def early_form_readers(config: dict) -> list[str]:
    """The page-load listeners that read the Train form under gradio's "once" mode. They read the form the page
    was built with, before the kept form is put back (webui.tabs.train.remember.restore), and "once" drops the
    change the restore then makes while they run: their answer for the defaults is the one that stays (the model
    summary described the demo model under the kept model's name after a reload)."""
    restore = next(d for d in config["dependencies"] if config["app"].fns[d["id"]].name == "restore")
    form = set(restore["outputs"])
    return [config["app"].fns[d["id"]].name for d in config["dependencies"]
            if d is not restore and any(event == "load" for _, event in d["targets"])
            and d["trigger_mode"] == "once" and form & set(d["inputs"])]


def test_no_page_load_listener_reads_the_train_form_before_it_is_restored(config):
    assert early_form_readers(config) == []


def test_the_check_finds_a_load_listener_of_the_form(config):
    restore = next(d for d in config["dependencies"] if config["app"].fns[d["id"]].name == "restore")
    early = {**restore, "id": next(d["id"] for d in config["dependencies"]
                                   if config["app"].fns[d["id"]].name == "list_configs"),
             "inputs": restore["outputs"][:1]}
    assert early_form_readers({**config, "dependencies": [*config["dependencies"], early]}) == ["list_configs"]
