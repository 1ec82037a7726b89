"""Run folders as the engine leaves them, written by tests of the page's handlers (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.config import parse_config
from webui.context import AppContext

TWO_LOSSES = ({"kind": "metrics", "t": 1, "step": 1, "loss": 2.0}, {"kind": "metrics", "t": 1, "step": 2, "loss": 1.0})


def write_run(ctx: AppContext, name: str, state: str = "completed", method: str = "lora", model: str = "tiny",
              val_size: float = 0.0, events: tuple[dict[str, Any], ...] = ()) -> Path:
    """RUNS/NAME with its config.yaml (one uploaded one-row dataset), status.json in `state`, and `events`
    followed by the status line (no events.jsonl when `events` is empty)."""
    data = ctx.uploads / "d.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text('{"instruction": "a", "output": "b"}\n')
    run = ctx.runs.runs_dir / name
    run.mkdir(parents=True)
    config = parse_config({"model": {"name_or_path": model}, "method": {"name": method},
                           "data": {"path": str(data), "val_size": val_size}, "output_dir": str(run)})
    (run / "config.yaml").write_text(config.to_yaml())
    (run / "status.json").write_text(json.dumps({"state": state, "pid": None, "error": None}))
    if events:
        lines = [*events, {"kind": "status", "t": 1, "state": state}]
        (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return run
