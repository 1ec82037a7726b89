"""The shape of the code, read from its `ast`: small files and functions, no import cycle between the modules
of engine/ and webui/, packages that import only the layers below them, a web process that imports no model
library (engine work runs in engine processes; webui/ reads only the plain-Python schema modules of the
engine), and no gradio in the web side's job control and forms. Each rule is a function over the import graph
(or the trees) that a test also runs on a planted violation, so a rule that stopped finding anything fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "webui")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 100
# Plain Python: schemas, folder names, events, error sentences, and the command table (launch.py --help lists it).
WEBUI_MAY_IMPORT = {
    "engine.config", "engine.datapaths", "engine.errors", "engine.sentences", "engine.sampling", "engine.__main__",
    "engine.jobs.rundir", "engine.jobs.events", "engine.jobs.failures", "engine.jobs.outputs", "engine.config_migrate",
    "engine.config_stage", "engine.config_eval", "engine.config_read", "engine.data.pairfile",
    "engine.config_compare", "engine.compare.table", "engine.compare.plan", "engine.compare.estimates",
    "engine.jobs.kinds", "engine.jobs.exports", "engine.config_distributed",
    "engine.model.shapes", "engine.model.config_json",
    "engine.estimate", "engine.estimate.memory", "engine.estimate.room", "engine.estimate.advice",
    "engine.estimate.timing", "engine.estimate.methods",
    "engine.serve.examples", "engine.serve.hosts",
    "engine.train.launch",  # the command of each node of a run of several processes (plain Python: no torch)
}
HEAVY = {"torch", "transformers", "peft", "bitsandbytes"}
# The layers, bottom up: a package may import its own modules and those of the layers below it, never above or
# beside it. A module at the top of engine/ or webui/ is a layer of its own (engine.config, webui.app ...).
LAYERS = (
    ("engine.sentences_more", "engine.sentences_log"), ("engine.sentences",), ("engine.errors",), ("engine.datapaths",),
    ("engine.config_migrate",), ("engine.config_read",), ("engine.config_stage",),
    ("engine.config_trackers", "engine.config_kernels", "engine.config_best", "engine.config_distributed"),
    ("engine.config",), ("engine.sampling",), ("engine.config_eval",), ("engine.config_compare",),
    ("engine.jobs",), ("engine.__main__",), ("engine.data",), ("engine.model",), ("engine.estimate",),
    ("engine.train", "engine.chat", "engine.export", "engine.cli"), ("engine.serve",), ("engine.eval",),
    ("engine.compare",),
    ("webui.options",), ("webui.jobs",), ("webui.forms",), ("webui.i18n",), ("webui.components",), ("webui.context",),
    ("webui.tabs",), ("webui.app",),
)
NO_GRADIO = ("webui.jobs", "webui.forms")  # job control and the form's mapping: testable without a page


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in SOURCES.items()}


def imported(name: str) -> set[str]:
    """Every module `name` imports, at any level (function bodies too): `from P import M` names module P.M
    where that is a module, else P; relative imports are resolved against `name`'s package."""
    package = name if SOURCES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in SOURCES else base)
    return found


GRAPH = {name: {target for target in imported(name) if target in SOURCES and target != name} for name in SOURCES}


def long_files(texts: dict[str, str]) -> dict[str, int]:
    """name -> line count of every text over MAX_FILE_LINES."""
    return {name: count for name, text in texts.items() if (count := len(text.splitlines())) > MAX_FILE_LINES}


def long_functions(trees: dict[str, ast.Module]) -> dict[str, int]:
    """'module:line name' -> length of every function over MAX_FUNCTION_LINES."""
    long = {}
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}:{node.lineno} {node.name}"] = length
    return long


def test_no_file_over_400_lines() -> None:
    long = long_files({name: path.read_text(encoding="utf-8") for name, path in SOURCES.items()})
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_100_lines() -> None:
    assert not long_functions(TREES), f"functions over {MAX_FUNCTION_LINES} lines: {long_functions(TREES)}"


def test_a_planted_long_file_and_long_function_are_found() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    code = f"def long():\n{body}\n\n\ndef short():\n    return 1\n" + "\n" * (MAX_FILE_LINES - MAX_FUNCTION_LINES)
    assert long_files({"planted": code, "small": "x = 1\n"}) == {"planted": len(code.splitlines())}
    assert long_functions({"planted": ast.parse(code)}) == {"planted:1 long": MAX_FUNCTION_LINES + 1}


def package_of(module: str) -> str:
    """The layer a module belongs to: engine.data.masking -> engine.data, webui.tabs.train.tab -> webui.tabs."""
    return ".".join(module.split(".")[:2])


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """'A imports B' for every import that goes up or sideways between the LAYERS (or into no declared layer)."""
    rank = {package: level for level, packages in enumerate(LAYERS) for package in packages}
    found = []
    for module, targets in sorted(graph.items()):
        source = package_of(module)
        for target in sorted(targets):
            into = package_of(target)
            if into != source and (source not in rank or into not in rank or rank[into] >= rank[source]):
                found.append(f"{module} imports {target}")
    return found


def gradio_violations(imports: dict[str, set[str]]) -> list[str]:
    """Modules under NO_GRADIO that import gradio."""
    return [name for name, modules in sorted(imports.items())
            if package_of(name) in NO_GRADIO and any(m.split(".")[0] == "gradio" for m in modules)]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the list of its modules (the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once every module it reaches is checked
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_packages_import_only_the_layers_below_them() -> None:
    assert not layer_violations(GRAPH), "\n".join(layer_violations(GRAPH))


def test_a_planted_import_upwards_or_sideways_is_found() -> None:
    planted = {"engine.data.masking": {"engine.train.recipe"},  # up
               "engine.chat.session": {"engine.export.merge"},  # sideways
               "webui.jobs.runs": {"webui.tabs.runs.tab"},  # up
               "engine.model.loading": {"engine.data.tokens", "engine.model.methods"}}  # allowed
    assert layer_violations(planted) == ["engine.chat.session imports engine.export.merge",
                                         "engine.data.masking imports engine.train.recipe",
                                         "webui.jobs.runs imports webui.tabs.runs.tab"]


def test_a_new_package_must_be_given_a_layer() -> None:
    assert layer_violations({"engine.vision.metrics": {"engine.config"}}) == [
        "engine.vision.metrics imports engine.config"]


def test_job_control_and_forms_import_no_gradio() -> None:
    found = gradio_violations({name: imported(name) for name in SOURCES})
    assert not found, f"{found} import gradio: webui/jobs and webui/forms must run without a page"


def test_a_planted_gradio_import_is_found() -> None:
    planted = {"webui.forms.mapping": {"gradio"}, "webui.tabs.chat": {"gradio"}}
    assert gradio_violations(planted) == ["webui.forms.mapping"]


def test_the_graph_sees_function_level_and_package_imports() -> None:
    assert "engine.model.loading" in GRAPH["engine.chat.session"]  # imported inside ChatSession.execute only
    assert "engine.jobs.rundir" in GRAPH["engine.train.recipe"]  # `from engine import rundir`


@pytest.mark.parametrize("name", sorted(name for name in SOURCES if name.split(".")[0] == "webui"))
def test_webui_imports_only_the_engine_schema_and_no_model_library(name: str) -> None:
    assert not web_import_violations(imported(name)), f"{name}: {web_import_violations(imported(name))}"


def web_import_violations(modules: set[str]) -> list[str]:
    """What a webui module must not import: engine modules outside WEBUI_MAY_IMPORT, and model libraries."""
    engine = sorted(m for m in modules if m.split(".")[0] == "engine" and m not in WEBUI_MAY_IMPORT)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    found = [f"imports {engine}: webui/ may import only {sorted(WEBUI_MAY_IMPORT)} of the engine"] if engine else []
    return found + ([f"imports {heavy}: model libraries run in engine processes only"] if heavy else [])


def test_a_planted_engine_or_model_library_import_in_the_web_process_is_found() -> None:
    assert len(web_import_violations({"engine.train.recipe", "torch.nn", "engine.config"})) == 2
    assert web_import_violations({"engine.config", "gradio", "pandas"}) == []
