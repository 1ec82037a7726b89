"""The models of one evaluation: what each name under `models` is, and one loaded base serving every adapter.

`plan_models` reads only small files: "base" is the base model itself; a run folder with adapter/ (any adapter
method or stage) or a PEFT adapter folder is an adapter; a full/freeze run's model/, an export job's folder
(its model/) or any model folder is a standalone model. The adapters are loaded once, those that can share a
base into one PeftModel over it, as the chat loads them (engine.chat.session.ChatSession, adapters switched per
model with its `adapter_scope`); peft stacks adapters of one kind only, so each other peft kind (IA3 beside LoRA,
prefix or prompt tuning beside either), quantization or base model is a load group of its own, loaded when its
turn comes and dropped before the next (the job evaluates each group's models together); a standalone model is
loaded when its turn comes and dropped after it, so that no more than
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

from engine.chat.plan import ChatError, LoadPlan, Source, adapter_base, plan_load, resolve_source
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
    group: str | None = None  # the load group it answers from (ModelPlan.groups); None: the plain base's


@dataclass(frozen=True)
class ModelPlan:
    entries: tuple[Entry, ...]
    load: LoadPlan | None  # the base and the adapters over it; None when only standalone models are evaluated
    groups: dict[str, LoadPlan] = field(default_factory=dict)  # each other load: a starting run or another kind

    def in_load_order(self) -> list[Entry]:
        """The entries with each group's together (config order otherwise), so that each group loads once."""
        rank = {name: index for index, name in enumerate(self.groups, start=1)}
        return sorted(self.entries, key=lambda entry: rank.get(entry.group, 0))


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


def _peft_type(source: Source) -> str | None:
    """The adapter's peft kind (LORA, IA3, PREFIX_TUNING ...) from its adapter_config.json; None for a model."""
    if source.kind != "adapter":
        return None
    config = json.loads((source.path / "adapter_config.json").read_text(encoding="utf-8"))
    return config.get("peft_type")


def _group_key(source: Source, base: str | None) -> tuple[str | None, str | None, str | None, int | None]:
    """What the adapters of one loaded base share: the run they start from (model.adapter), the base model, the peft
    kind (peft stacks one kind over one base: LoRA and IA3, or LoRA and prefix tuning, cannot share it) and the
    quantization the run trained in. A full/freeze run's model (loaded alone when its turn comes) goes with any."""
    run = source.run if source.kind == "adapter" else None
    if source.kind != "adapter":
        return None, None, None, None
    return (run.model.adapter if run else None, base or adapter_base(source), _peft_type(source),
            run.method.effective_bits if run else None)


def _load_groups(base: str | None, adapters: dict[str, str]) -> dict[tuple, dict[str, str]]:
    """The adapters (name -> source), split into the groups that can share one loaded base, in config order; a
    full/freeze run joins the first group without a starting run (it is loaded alone when its turn comes)."""
    groups: dict[tuple, dict[str, str]] = {}
    models: dict[str, str] = {}
    for name, source in adapters.items():
        key = _group_key(resolve_source(name, source), base)
        (models if key == (None, None, None, None) else groups.setdefault(key, {}))[name] = source
    if models:
        first_plain = next((key for key in groups if key[0] is None), (None, None, None, None))
        groups.setdefault(first_plain, {}).update(models)
    return groups


def _group_name(key: tuple, taken: dict[str, LoadPlan]) -> str:
    """A group's name in ModelPlan.groups: the run it starts from, else its peft kind (and bits), made unique."""
    start, _, kind, bits = key
    name = start or f"{kind or 'adapter'}{f' {bits}-bit' if bits else ''}"
    return _unique(name, set(taken))


def plan_models(config: EvalConfig) -> ModelPlan:
    """What each entry of config.models is, and what must be loaded; EvalModelError (one sentence) otherwise.

    The first group of adapters over the plain base (by config order) is loaded with the base that "base" answers
    from; every other group (another peft kind, quantization or base, or a run started from another run) is a
    load of its own, made when its first entry's turn comes."""
    standalone, adapters = _classify(config)
    try:
        keyed = _load_groups(config.base, adapters)
        main_key = next((key for key in keyed if key[0] is None), None)
        plan = plan_load(config.base, keyed[main_key], bits=None, dtype=config.dtype) if main_key else None
        groups: dict[str, LoadPlan] = {}
        group_of: dict[str, str] = {}
        for key, group in keyed.items():
            if key == main_key:
                continue
            name = _group_name(key, groups)
            groups[name] = plan_load(config.base, group, bits=None, dtype=config.dtype)
            group_of.update(dict.fromkeys(group, name))
    except ChatError as error:
        raise EvalModelError(error.sentence) from None
    plain_bases = {key[1] for key in keyed if key[0] is None and key[1]}
    if BASE in config.models and not config.base and len(plain_bases) > 1:
        raise EvalModelError(said("engine.eval.different_bases", bases=", ".join(sorted(plain_bases))))
    group_base = next((group.model for group in groups.values()), None)
    base = plan.model if plan else config.base or group_base or _standalone_base(standalone)
    if plan is None and BASE in config.models:
        if not base:
            raise EvalModelError(said("engine.eval.no_base"))
        plan = LoadPlan(model=base, dtype=config.dtype)
    by_name = {source.name: source for load in (plan, *groups.values()) if load for source in load.sources}
    entries = []
    for source in config.models:
        if source == BASE:
            entries.append(Entry(BASE, "base", str(base), BASE))
        elif source in standalone:
            name, folder = standalone[source]
            entries.append(Entry(name, "model", str(folder), source))
        else:
            name = next(name for name, given in adapters.items() if given == source)
            kind = by_name[name].kind  # a full/freeze run folder resolves to its model/
            entries.append(Entry(name, kind, str(by_name[name].path), source, group_of.get(name)))
    if plan is not None:
        plan = dataclasses.replace(plan, sources=plan.adapters)  # full/freeze runs: loaded one at a time
        if not plan.sources and BASE not in config.models:
            plan = None  # only standalone models: no base to hold
    return ModelPlan(tuple(entries), plan, groups)


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
        self.group: tuple[str, Any] | None = None  # (name, its session): the other load group held now
        if plan.load is not None:
            adapters = said("engine.log.eval_adapters", count=len(plan.load.sources)) if plan.load.sources else ""
            log(said("engine.log.eval_loading_base", model=plan.load.model, adapters=adapters))
            try:
                self.session.execute(plan.load)
            except (ModelError, ChatError) as error:
                raise EvalModelError(error.sentence) from error

    def _group(self, name: str) -> Any:
        """The session of the load group `name` (a starting run's runs over the base with it merged, or adapters
        of another kind or quantization), loaded once; the group loaded before it is dropped first."""
        from engine.chat.session import ChatSession
        from engine.model.loading import ModelError

        if self.group is not None and self.group[0] == name:
            return self.group[1]
        self.group = None
        _free()
        group = self.plan.groups[name]
        if group.start:
            self.log(said("engine.log.eval_loading_started", model=group.model, start=group.start,
                          count=len(group.sources)))
        else:
            self.log(said("engine.log.eval_loading_group", model=group.model, kind=name, count=len(group.sources)))
        session = ChatSession()
        try:
            session.execute(group)
        except (ModelError, ChatError) as error:
            raise EvalModelError(error.sentence) from error
        self.group = (name, session)
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
        session = self._group(entry.group) if entry.group else self.session
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

