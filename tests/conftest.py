from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tokenized-rows cache (engine.data.tokcache) of this test session, not the user's; inherited by every process it
# starts. The pytest-xdist workers (tests/run.sh) inherit the session's folder and each take a folder of their own
# inside it, removed with it.
SESSION_CACHE_ENV = "WORKBENCH_TEST_SESSION_CACHE"
SERIAL_LEFT_ENV = "WORKBENCH_TEST_SERIAL_LEFT"  # a file the --part parallel pass creates when it left serial tests out
if "WORKBENCH_CACHE_DIR" not in os.environ:
    os.environ["WORKBENCH_CACHE_DIR"] = os.environ[SESSION_CACHE_ENV] = tempfile.mkdtemp(prefix="workbench-cache-")
    atexit.register(shutil.rmtree, os.environ["WORKBENCH_CACHE_DIR"], ignore_errors=True)
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ["WORKBENCH_CACHE_DIR"] == os.environ.get(SESSION_CACHE_ENV):
    os.environ["WORKBENCH_CACHE_DIR"] = os.path.join(os.environ[SESSION_CACHE_ENV], os.environ["PYTEST_XDIST_WORKER"])

from tests.tiny import build_tiny_llama  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--part", choices=("all", "parallel", "serial"), default="all",
                     help="tests/run.sh's two passes: 'parallel' leaves out the tests marked serial (they measure "
                          "wall-clock time and need the machine to themselves), 'serial' runs only them")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test's folder says what it needs (markers in pyproject.toml): tests/browser drives Chromium. --part picks
    the tests of one of tests/run.sh's passes."""
    for item in items:
        if "browser" in Path(str(item.path)).relative_to(ROOT).parts[:2]:
            item.add_marker(pytest.mark.browser)
    part = config.getoption("--part")
    if part != "all":
        keep, leave = [], []
        for item in items:
            in_part = (item.get_closest_marker("serial") is not None) == (part == "serial")
            (keep if in_part else leave).append(item)
        config.hook.pytest_deselected(items=leave)
        items[:] = keep
        if part == "parallel" and leave and os.environ.get(SERIAL_LEFT_ENV):
            Path(os.environ[SERIAL_LEFT_ENV]).touch()  # tests/run.sh runs its serial pass only then


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with no chat template (the engine falls back to ChatML)."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def memorise_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama wide enough, and with weights large enough, for LoRA or a soft prompt to
    memorise a few answers in a few dozen steps (the 64-wide default cannot produce confident logits)."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "memorise-llama", hidden_size=128,
                            initializer_range=0.1)
