"""What a server serves: the model names it answers to, and which of them are loaded together.

A workspace's finished runs (WORKSPACE/runs/NAME with a status of completed and its adapter/ or model/ written,
read through engine.jobs.rundir) are served under their run names, and each base model they were trained on
under its own name (a local folder's name, or the hub id). Runs are grouped as the chat worker can load them
at once: one base, one adapter kind, one quantization and one starting run (`model.adapter`: a DPO run trained
from an SFT run is loaded over the base with that run merged, so it never shares a load with the SFT run itself);
the server loads one group at a time and switches adapters inside it. A base answers from a group with no starting
run (of no adapter where none of its runs has one). `--model DIR` serves that one model folder (a merged export,
or any model) alone.

Names are all a client can send: no request names a path, so the server reads only the workspace's runs and the
bases their configs name (the boundary the page keeps with its own roots).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.chat.plan import ChatError, resolve_source
from engine.jobs import rundir
from engine.sentences import said

log = logging.getLogger("engine.serve")

GroupKey = tuple[str, str, int | None, str | None]  # (base model, adapter kind or "model", bits, start run)


@dataclass(frozen=True)
class Group:
    """Models loaded at once: a base and the runs over it (ChatSession.load's model and adapters)."""

    model: str
    adapters: dict[str, str] = field(default_factory=dict)  # run name -> run folder


@dataclass(frozen=True)
class Served:
    """One model name: the group it is loaded with, and the adapter that answers (None: the base)."""

    name: str
    group: GroupKey
    adapter: str | None = None
    owned_by: str = "workbench"


@dataclass
class Catalog:
    models: dict[str, Served] = field(default_factory=dict)
    groups: dict[GroupKey, Group] = field(default_factory=dict)

    def find(self, name: object) -> Served:
        """The model a request names; ChatError (a sentence) for any other name, a path included."""
        if isinstance(name, str) and name in self.models:
            return self.models[name]
        raise ChatError(f"The model '{name}' is not served here: use one of {', '.join(self.models)}.")

    @property
    def first(self) -> Served:
        return next(iter(self.models.values()))


def base_name(model: str) -> str:
    """How a base is named to clients: a local folder by its name (an export's WORKSPACE/exports/NAME/model by
    NAME), a hub id as it is."""
    path = Path(model).expanduser()
    if not path.exists():
        return model
    path = path.resolve()
    return path.parent.name if path.name == rundir.MODEL and path.parent.name else path.name


def single_model(model: str, name: str | None = None) -> Catalog:
    """`--model`: one model folder or hub id, alone."""
    key: GroupKey = (model, "model", None, None)
    served = Served(name or base_name(model), key, None)
    return Catalog({served.name: served}, {key: Group(model)})


def finished_runs(workspace: Path) -> list[rundir.RunDir]:
    """The runs of WORKSPACE/runs that completed and wrote their weights, by name; a run folder that resolves
    outside the workspace (a symbolic link) is left out."""
    runs_root = workspace / "runs"
    if not runs_root.is_dir():
        return []
    inside = workspace.resolve()
    found = []
    for folder in sorted(p for p in runs_root.iterdir() if p.is_dir()):
        run = rundir.RunDir(folder)
        if run.read_status().get("state") != "completed" or run.weights_dir() is None:
            continue
        if not folder.resolve().is_relative_to(inside):
            log.warning("%s is outside the workspace %s: not served", folder, workspace)
            continue
        found.append(run)
    return found


def workspace_catalog(workspace: Path) -> Catalog:
    """Every finished run of the workspace and every base they name; ChatError when there is none."""
    catalog = Catalog()
    for run in finished_runs(workspace):
        try:
            source = resolve_source(run.name, run.path)
        except (ChatError, ValueError, OSError) as error:
            log.warning("run %s is not served: %s", run.name, error)
            continue
        if source.run is None:
            continue
        kind = "model"
        if source.kind == "adapter":
            config = json.loads((source.path / "adapter_config.json").read_text(encoding="utf-8"))
            kind = str(config.get("peft_type", "adapter"))
        key: GroupKey = (source.run.model.name_or_path, kind, source.run.method.effective_bits,
                         source.run.model.adapter)
        group = catalog.groups.setdefault(key, Group(key[0]))
        group.adapters[run.name] = str(run.path)
        catalog.models[run.name] = Served(run.name, key, run.name)
    # a base answers in full precision if it can, and never from a group whose runs start from another run (its
    # "base" there is the base with that run merged): such a group's base gets a group of its own, with no adapter
    for key in sorted(catalog.groups, key=lambda k: (k[2] is not None, k[3] is not None)):
        name = base_name(key[0])
        name = name if name not in catalog.models or catalog.models[name].adapter is None else f"{name}-base"
        if name not in catalog.models:
            plain: GroupKey = (*key[:3], None)
            catalog.groups.setdefault(plain, Group(key[0]))
            catalog.models[name] = Served(name, plain, None, owned_by="base")
    if not catalog.models:
        raise ChatError(said("engine.serve.no_runs", runs=str(workspace / "runs")))
    return catalog
