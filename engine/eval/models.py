"""The models of one evaluation: what each name under `models` is, and one loaded base serving every adapter.

`plan_models` reads only small files: "base" is the base model itself; a run folder with adapter/ (any adapter
method or stage) or a PEFT adapter folder is an adapter; a full/freeze run's model/, an export job's folder
(its model/) or any model folder is a standalone model. The adapters are loaded once, all of them into one
PeftModel over one base, as the chat loads them (engine.chat.session.ChatSession, adapters switched per model with
its `adapter_scope`); a standalone model is loaded when its turn comes and dropped after it, so that no more than
one extra copy of the weights is held at a time. A run that started from another run (`model.adapter`, such as DPO
after SFT) answers over the base with that run merged, as the chat loads it: the runs of one starting point are a
group of their own, loaded when the first of them comes, beside (never instead of) the plain base that "base" and
the other runs answer from. (Before, one such run made "base" answer as the merged SFT model, and a run of another
starting point beside it failed the evaluation.)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.chat.plan import ChatError, LoadPlan, plan_load, resolve_source
from engine.config import ModelConfig
from engine.config_eval import BASE, EvalConfig
from engine.jobs import rundir
from engine.jobs.failures import EngineError
from engine.sentences import said


class EvalModelError(EngineError, ValueError):
    """A model an evaluation cannot load; the message is one sentence for the user."""


@dataclass(frozen=True)
class Entry:
    """One model of the evaluation: its name in the results, what it is and where it lives."""

    name: str
    kind: str  # "base", "adapter" or "model"
    path: str  # the base's hub id or folder; the adapter or model folder
    source: str  # what the config named
    start: str | None = None  # an adapter run's model.adapter: it answers from that starting point's group


@dataclass(frozen=True)
class ModelPlan:
    entries: tuple[Entry, ...]
    load: LoadPlan | None  # the base and the adapters over it; None when only standalone models are evaluated
    started: dict[str, LoadPlan] = field(default_factory=dict)  # model.adapter -> its runs over the merged base


def _exported_model(path: Path) -> Path | None:
    """An export job's folder (its model/, when that is a standalone model) or a model folder itself."""
    if (path / rundir.MODEL / "config.json").is_file() and (path / "config.yaml").is_file() and not (
            path / rundir.ADAPTER).exists():
        run_config = rundir.JobDir(path).read_raw_config()
        if "run_dir" in run_config:  # an export job (ExportConfig), not a full/freeze run
            return path / rundir.MODEL
    if (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        return path
    return None


def _export_base(folder: Path) -> str | None:
    """The base model an exported folder's run was trained on (export.json names the run)."""
    facts = folder / "export.json"
    if not facts.is_file():
        return None
    run = rundir.RunDir(Path(json.loads(facts.read_text(encoding="utf-8")).get("run", "")))
    return run.read_config().model.name_or_path if run.config.is_file() else None


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    taken.add(candidate)
    return candidate


def _classify(config: EvalConfig) -> tuple[dict[str, tuple[str, Path]], dict[str, str]]:
    """The standalone models (source -> (name, folder)) and the adapters (name -> source) of config.models."""
    taken: set[str] = {BASE}
    standalone: dict[str, tuple[str, Path]] = {}
    adapters: dict[str, str] = {}
    for source in config.models:
        if source == BASE:
            continue
        path = Path(source).expanduser()
        if not path.exists():
            raise EvalModelError(said("engine.eval.no_model", source=source))
        folder = _exported_model(path)
        name = _unique(path.parent.name if path.name in (rundir.ADAPTER, rundir.MODEL) else path.name,
                       taken)
        if folder is not None:
            standalone[source] = (name, folder)
        else:
            adapters[name] = source
    return standalone, adapters


def _by_start(adapters: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The adapters that train on the plain base, and those of each starting run (model.adapter), by start."""
    plain: dict[str, str] = {}
    started: dict[str, dict[str, str]] = {}
    for name, source in adapters.items():
        found = resolve_source(name, source)
        start = found.run.model.adapter if found.run is not None and found.kind == "adapter" else None
        (started.setdefault(start, {}) if start else plain)[name] = source
    return plain, started


def plan_models(config: EvalConfig) -> ModelPlan:
    """What each entry of config.models is, and what must be loaded; EvalModelError (one sentence) otherwise."""
    standalone, adapters = _classify(config)
    try:
        plain, starts = _by_start(adapters)
        started = {start: plan_load(config.base, group, bits=None, dtype=config.dtype)
                   for start, group in starts.items()}
        plan = plan_load(config.base, plain, bits=None, dtype=config.dtype) if plain else None
    except ChatError as error:
        raise EvalModelError(error.sentence) from None
    group_base = next((group.model for group in started.values()), None)
    base = plan.model if plan else config.base or group_base or _standalone_base(standalone)
    if plan is None and BASE in config.models:
        if not base:
            raise EvalModelError(said("engine.eval.no_base"))
        plan = LoadPlan(model=base, dtype=config.dtype)
    entries = []
    by_name = {source.name: source for source in (plan.sources if plan else ())}
    start_of = {}
    for start, group in started.items():
        by_name.update({source.name: source for source in group.sources})
        start_of.update(dict.fromkeys(starts[start], start))
    for source in config.models:
        if source == BASE:
            entries.append(Entry(BASE, "base", str(base), BASE))
        elif source in standalone:
            name, folder = standalone[source]
            entries.append(Entry(name, "model", str(folder), source))
        else:
            name = next(name for name, given in adapters.items() if given == source)
            kind = by_name[name].kind  # a full/freeze run folder resolves to its model/
            entries.append(Entry(name, kind, str(by_name[name].path), source, start_of.get(name)))
    if plan is not None:
        plan = dataclasses.replace(plan, sources=plan.adapters)  # full/freeze runs: loaded one at a time
        if not plan.sources and BASE not in config.models:
            plan = None  # only standalone models: no base to hold
    return ModelPlan(tuple(entries), plan, started)


def _standalone_base(standalone: dict[str, tuple[str, Path]]) -> str | None:
    bases = {base for _, folder in standalone.values() if (base := _export_base(folder))}
    return bases.pop() if len(bases) == 1 else None


class LoadedModels:
    """The loaded base and adapters (one ChatSession), and each entry's model in turn (`use`)."""

    def __init__(self, plan: ModelPlan, log: Any):
        from engine.chat.session import ChatSession
        from engine.model.loading import ModelError

        self.plan, self.log = plan, log
        self.session = ChatSession()
        self.group: tuple[str, Any] | None = None  # (start, its session): the starting point loaded now
        if plan.load is not None:
            adapters = said("engine.log.eval_adapters", count=len(plan.load.sources)) if plan.load.sources else ""
            log(said("engine.log.eval_loading_base", model=plan.load.model, adapters=adapters))
            try:
                self.session.execute(plan.load)
            except (ModelError, ChatError) as error:
                raise EvalModelError(error.sentence) from error

    def _started(self, start: str) -> Any:
        """The session of the runs that start from `start` (the base with that run merged), loaded once; the
        group loaded before it is dropped first."""
        from engine.chat.session import ChatSession
        from engine.model.loading import ModelError

        if self.group is not None and self.group[0] == start:
            return self.group[1]
        self.group = None
        _free()
        group = self.plan.started[start]
        self.log(said("engine.log.eval_loading_started", model=group.model, start=start, count=len(group.sources)))
        session = ChatSession()
        try:
            session.execute(group)
        except (ModelError, ChatError) as error:
            raise EvalModelError(error.sentence) from error
        self.group = (start, session)
        return session

    @contextmanager
    def use(self, entry: Entry) -> Iterator[tuple[Any, Any]]:
        """(model, tokenizer) answering as `entry`, adapters switched as the chat switches them."""
        if entry.kind == "model":
            model, tokenizer = self._standalone(entry)
            try:
                yield model, tokenizer
            finally:
                del model
                _free()
            return
        session = self._started(entry.start) if entry.start else self.session
        adapter = None if entry.kind == "base" else entry.name
        tokenizer = session.tokenizers.get(adapter, session.tokenizer) if adapter else session.tokenizer
        with session.adapter_scope(adapter, session.model) if session.model is not None else nullcontext():
            yield session.model, tokenizer

    def _standalone(self, entry: Entry) -> tuple[Any, Any]:
        from engine.data.tokens import ensure_chat_template
        from engine.model.loading import ModelError, load_model, load_tokenizer

        self.log(said("engine.log.eval_loading", name=entry.name, path=entry.path))
        config = ModelConfig(name_or_path=entry.path, dtype=self.plan.load.dtype if self.plan.load else "auto")
        try:
            tokenizer = load_tokenizer(config)
            ensure_chat_template(tokenizer)
            return load_model(config).eval(), tokenizer
        except ModelError as error:
            raise EvalModelError(error.sentence) from error


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

