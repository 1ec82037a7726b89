"""The shape of the code, read from its `ast`: small files and functions, no import cycle between the modules
of engine/ and webui/, and a web process that imports no model library (engine work runs in engine
processes; webui/ reads only the plain-Python schema modules of the engine)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "webui")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 100
# Plain Python: schemas, folder names, events, error sentences, and the command table (launch.py --help lists it).
WEBUI_MAY_IMPORT = {"engine.config", "engine.jobs.rundir", "engine.jobs.events", "engine.jobs.failures", "engine.jobs.outputs",
                    "engine.__main__", "engine.datapaths", "engine.model.shapes"}
HEAVY = {"torch", "transformers", "peft", "bitsandbytes"}


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


def test_no_file_over_400_lines() -> None:
    long = {str(path.relative_to(ROOT)): count for path in SOURCES.values()
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_100_lines() -> None:
    long = {}
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{SOURCES[name].relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


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


def test_the_graph_sees_function_level_and_package_imports() -> None:
    assert "engine.model.loading" in GRAPH["engine.chat.session"]  # imported inside ChatSession.execute only
    assert "engine.jobs.rundir" in GRAPH["engine.train.recipe"]  # `from engine import rundir`


@pytest.mark.parametrize("name", sorted(name for name in SOURCES if name.split(".")[0] == "webui"))
def test_webui_imports_only_the_engine_schema_and_no_model_library(name: str) -> None:
    modules = imported(name)
    engine = sorted(m for m in modules if m.split(".")[0] == "engine" and m not in WEBUI_MAY_IMPORT)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not engine, f"{name} imports {engine}: webui/ may import only {sorted(WEBUI_MAY_IMPORT)} of the engine"
    assert not heavy, f"{name} imports {heavy}: model libraries run in engine processes only"
