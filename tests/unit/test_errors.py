"""Every error meant for a person derives from engine.errors.UserError, and each layer names its errors its own
way: no two error classes anywhere in engine/ and webui/ share a name (read from the source with `ast`, as
tests/unit/test_structure.py reads imports), so a traceback or an `except` says which layer raised."""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

from engine.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "webui")

# module -> the classes in it whose message is the sentence a person reads (a toast, the CLI's line, a status)
FOR_A_PERSON = {
    "engine.config_read": ("ConfigError",),
    "engine.sampling": ("SamplingError",),
    "engine.serve.protocol": ("ServeError",),
    "engine.eval.testset": ("EvalSetError",),
    "engine.eval.models": ("EvalModelError",),
    "engine.eval.judge": ("JudgeError",),
    "engine.jobs.failures": ("EngineError", "DataError"),
    "engine.jobs.lifecycle": ("JobFolderError", "JobFolderGoneError"),
    "engine.jobs.kinds": ("UnknownKindError",),
    "engine.train.launch": ("LaunchError",),
    "webui.jobs.submit": ("JobExistsError",),
    "engine.model.loading": ("ModelError",),
    "engine.model.config_json": ("ModelFileError",),
    "engine.model.start": ("StartError",),
    "engine.data.pairfile": ("PairError",),
    "engine.data.formats": ("PreferenceRowsError",),
    "engine.export.merge": ("ExportError",),
    "engine.export.cli": ("ExportRefusedError",),
    "engine.jobs.workspace": ("RunNotFoundError",),
    "engine.export.verify": ("VerificationError",),
    "engine.chat.plan": ("ChatError",),
    "engine.train.preflight": ("MemoryCheckError",),
    "engine.train.trainer": ("DivergedError",),
    "engine.train.kernels": ("KernelsError",),
    "webui.jobs.paths": ("PathError",),
    "webui.jobs.runs": ("RunError",),
    "webui.jobs.evals": ("EvalChoiceError",),
    "webui.jobs.compares": ("CompareRunningError",),
    "webui.forms.compare_table": ("CompareFormError", "CompareValueError"),
    "webui.jobs.commands": ("EngineCommandError",),
    "webui.forms.prestart": ("StartRefusedError",),
    "webui.jobs.chat_client": ("ChatWorkerError",),
    "webui.jobs.chat_tools": ("ToolsError",),
    "webui.jobs.serving": ("ServingError",),
}
# Errors that are no sentence for a person: a part of one that the catcher completes (file and row, the template's
# own words), or a fault of the machinery that is logged. Each is listed, so a new error class must be placed.
INTERNAL = {"LifetimeError", "EventError", "ToolDataError", "_RowError", "MaskingError", "RenderError",
            "SchemaError"}


def error_classes() -> dict[str, list[str]]:
    """Every class in engine/ and webui/ whose name ends in Error -> the modules that define one by that name."""
    found: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                    found[node.name].append(module)
    return dict(found)


@pytest.mark.parametrize(("module", "name"), [(module, name) for module, names in FOR_A_PERSON.items()
                                              for name in names])
def test_every_error_for_a_person_is_a_user_error(module: str, name: str) -> None:
    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, UserError), f"{module}.{name} must derive from engine.errors.UserError"


def shared_names(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """The error class names that more than one module defines."""
    return {name: modules for name, modules in found.items() if len(modules) > 1}


def test_no_two_error_classes_share_a_name() -> None:
    assert not shared_names(error_classes()), f"one name, several modules: {shared_names(error_classes())}"


def test_a_planted_shared_name_is_found() -> None:
    found = {**error_classes(), "ChatError": ["engine.chat.plan", "webui.jobs.chat_client"]}
    assert shared_names(found) == {"ChatError": ["engine.chat.plan", "webui.jobs.chat_client"]}


def test_every_error_class_is_placed_as_for_a_person_or_internal() -> None:
    listed = {name for names in FOR_A_PERSON.values() for name in names} | INTERNAL | {"UserError"}
    assert set(error_classes()) - listed == set(), "a new error class: add it to FOR_A_PERSON or INTERNAL"
    assert {name for names in FOR_A_PERSON.values() for name in names} <= set(error_classes())
