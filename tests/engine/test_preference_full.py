"""DPO and KTO with methods full and freeze on a tiny real Llama, in-process through engine.train.recipe.run_train
(what `launch.py train` runs after reading its config): with no adapter to disable, the reference is a frozen copy
of the starting model (engine/train/preference.py frozen_reference), which must stay exactly the starting weights
while the trained model moves (all of it with full; with freeze only its last decoder layer), and which the
pre-flight memory estimate counts as a part of its own. Three runs of 3 steps: dpo-full, kto-full, dpo-freeze."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.jobs.events import Metrics, final_status, read_events
from engine.jobs.rundir import RunDir
from tests.cli import engine_process_state_kept, write_config, write_rows
from tests.engine.test_preference import PAIRS


@pytest.mark.parametrize(("stage", "method"), [("dpo", "full"), ("kto", "full"), ("dpo", "freeze")])
def test_full_weights_train_against_a_frozen_copy_that_does_not_move(stage: str, method: str, memorise_model: Path,
                                                                      tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM

    from engine.config import load_config
    from engine.train import preference
    from engine.train.recipe import run_train

    made: list[Any] = []

    def recorded(model: Any) -> Any:
        made.append((model, preference_copy(model)))
        return made[-1][1]

    preference_copy = preference.frozen_reference
    monkeypatch.setattr(preference, "frozen_reference", recorded)
    data = write_rows(tmp_path / "pairs.json", PAIRS)
    options = {"freeze_trainable_layers": 1} if method == "freeze" else {}
    config = write_config(tmp_path / "run.yaml", memorise_model, data, tmp_path / "run",
                          method={"name": method, **options},
                          train={"stage": stage, "max_steps": 3, "batch_size": 2, "learning_rate": 1e-3,
                                 "lr_scheduler_type": "constant", "cutoff_len": 64, "save_steps": 50})
    with engine_process_state_kept():
        code = run_train(load_config(config))
    run = RunDir(tmp_path / "run")
    log = run.train_log.read_text(encoding="utf-8") if run.train_log.exists() else ""
    assert code == 0, log[-3000:]
    events = read_events(run.events)
    assert final_status(events).state == "completed"
    curves = [event.values for event in events if isinstance(event, Metrics)]
    assert len(curves) == 3 and {"dpo": "rewards/margins", "kto": "kl"}[stage] in curves[-1]
    assert "reference model" in log  # the memory estimate's line names the copy among its parts

    [(trained, reference)] = made
    assert reference is not None and reference is not trained
    assert not any(p.requires_grad for p in reference.parameters()) and not reference.training
    start = AutoModelForCausalLM.from_pretrained(memorise_model).state_dict()
    kept = reference.state_dict()
    assert all(torch.equal(kept[name], value) for name, value in start.items())  # the reference did not move
    saved = AutoModelForCausalLM.from_pretrained(run.weights_dir()).state_dict()
    moved = [name for name, value in start.items() if not torch.equal(saved[name], value)]
    if method == "full":
        assert len(moved) > len(start) // 2  # while the trained model did, nearly every tensor of it
    else:  # freeze: every weight of the last decoder layer (of 2), nothing else
        assert moved and all(name.startswith("model.layers.1.") for name in moved), moved
