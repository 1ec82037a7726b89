"""What a chat load request means, decided before any model is touched: a pure plan step.

`plan_load(model, adapters, bits, dtype)` resolves every adapter source (a run folder, with adapter/ or
model/ inside, or any PEFT adapter folder), the base model (given, or named by the runs), the quantization
(the run's own unless told) and the dtype, into a frozen `LoadPlan`. It reads only small files (config.yaml,
adapter_config.json) and imports no torch, so a bad request is refused before the loaded model is dropped;
ChatSession.load (engine/chat/session.py) then executes the plan.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import ModelConfig, RunConfig
from engine.jobs import rundir
from engine.jobs.failures import EngineError
from engine.sentences import said


class ChatError(EngineError, ValueError):
    """A request that cannot be served; the message is one sentence for the user."""


@dataclass(frozen=True)
class Source:
    """One thing to chat with besides the base: a PEFT adapter folder, or a full/freeze run's model."""

    name: str
    path: Path  # the adapter folder or the full model folder
    kind: str  # "adapter" or "model"
    run: RunConfig | None = None  # the run's config when `path` came from a run folder


@dataclass(frozen=True)
class LoadPlan:
    """Everything a load does, decided: the base, its quantization and dtype, and the sources over it."""

    model: str  # the base: hub id or folder
    sources: tuple[Source, ...] = ()
    bits: int | None = None  # 4 or 8: the base is quantized; None: full precision
    dtype: str = "auto"  # of the base and of full models
    trust_remote_code: bool = False
    start: str | None = None  # the runs' model.adapter: a finished run merged into the base (engine/model/start.py)

    @property
    def adapters(self) -> tuple[Source, ...]:
        """The PEFT adapters, loaded into one PeftModel over the base."""
        return tuple(source for source in self.sources if source.kind == "adapter")

    @property
    def full_models(self) -> tuple[Source, ...]:
        """Full/freeze runs' models, loaded beside the base."""
        return tuple(source for source in self.sources if source.kind == "model")

    @property
    def base_config(self) -> ModelConfig:
        return ModelConfig(name_or_path=self.model, dtype=self.dtype, trust_remote_code=self.trust_remote_code,
                           adapter=self.start)


def plan_load(model: str | None = None, adapters: dict[str, str] | None = None, bits: Any = None,
              dtype: str | None = None, roots: list[str] | None = None) -> LoadPlan:
    """The plan of a load request; ChatError (one sentence) for a request that cannot be served.

    model None takes the base from the runs' config.yaml; bits None is the run's own quantization. `roots`
    (the web page sends the folders its server may read): every adapter folder, and a base model that is a
    local folder, must lie inside one of them, or the request is refused before anything in them is read."""
    adapters = dict(adapters or {})
    for name in adapters:
        if not isinstance(name, str) or not name:
            raise ChatError("Adapter names must be non-empty strings.")
    for location in adapters.values():
        check_inside(location, roots)
    sources = tuple(resolve_source(name, location) for name, location in adapters.items())
    model = model or base_from(sources)
    if Path(model).expanduser().exists():  # a local folder to transformers; anything else is a hub id
        check_inside(model, roots)
    runs = [s.run for s in sources if s.run is not None and s.kind == "adapter"]
    bits_choice = parse_bits(bits)
    if bits_choice == "run":
        bits_choice = runs[0].method.effective_bits if runs else None
    starts = {run.model.adapter for run in runs}
    if len(starts) > 1:
        raise ChatError(said("engine.chat.different_starts"))
    return LoadPlan(
        model=model,
        sources=sources,
        bits=bits_choice,
        dtype=dtype or (runs[0].model.dtype if runs else "auto"),
        trust_remote_code=any(s.run.model.trust_remote_code for s in sources if s.run is not None),
        start=starts.pop() if starts else None,
    )


def check_inside(path: str | os.PathLike, roots: list[str] | None) -> None:
    """ChatError unless `path` (symbolic links followed) lies in one of `roots`; None: no limit (the terminal)."""
    if roots is None:
        return
    if not isinstance(roots, list) or not all(isinstance(root, str) for root in roots):
        raise ChatError("roots must be a list of folders.")
    resolved = Path(path).expanduser().resolve()
    if not any(resolved.is_relative_to(Path(root).expanduser().resolve()) for root in roots):
        raise ChatError(said("engine.chat.outside", path=str(path)))


def resolve_source(name: str, location: str | os.PathLike) -> Source:
    """A run folder (adapter/ or model/ inside) or any PEFT adapter folder -> Source."""
    path = Path(location).expanduser()
    if not path.exists():
        raise ChatError(said("engine.chat.no_folder", name=name, path=str(path)))
    if (path / "adapter_config.json").is_file():
        run = _run_config(path.parent) if path.name == rundir.ADAPTER else None
        return Source(name, path, "adapter", run)
    run_dir = rundir.RunDir(path)
    run = _run_config(path)
    if (run_dir.adapter / "adapter_config.json").is_file():
        return Source(name, run_dir.adapter, "adapter", run)
    if (run_dir.model / "config.json").is_file():
        return Source(name, run_dir.model, "model", run)
    raise ChatError(said("engine.chat.not_an_adapter", name=name, path=str(path)))


def _run_config(folder: Path) -> RunConfig | None:
    run = rundir.RunDir(folder)
    return run.read_config() if run.config.is_file() else None


def adapter_base(source: Source) -> str | None:
    """The base model an adapter was trained on: the run's config, else the adapter's own config."""
    if source.run is not None:
        return source.run.model.name_or_path
    if source.kind == "adapter":
        config = json.loads((source.path / "adapter_config.json").read_text(encoding="utf-8"))
        return config.get("base_model_name_or_path")
    return None


def base_from(sources: tuple[Source, ...]) -> str:
    """The one base model the sources were trained on."""
    bases = {adapter_base(s) for s in sources if adapter_base(s)}
    if not bases:
        raise ChatError(said("engine.chat.no_base"))
    if len(bases) > 1:
        raise ChatError(said("engine.chat.different_bases", bases=", ".join(sorted(bases))))
    return bases.pop()


def parse_bits(value: Any) -> int | None | str:
    """Request bits: None/"run" = the run's own quantization, 0/"none"/false = full precision, 4 or 8."""
    if value is None or value == "run":
        return "run"
    if value in (0, False, "none", "0"):
        return None
    if value in (4, 8, "4", "8"):
        return int(value)
    raise ChatError(f"bits is {value!r}: use null (the run's own), 0 (full precision), 4 or 8.")
