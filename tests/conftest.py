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
# starts.
if "WORKBENCH_CACHE_DIR" not in os.environ:
    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="workbench-cache-")
    atexit.register(shutil.rmtree, os.environ["WORKBENCH_CACHE_DIR"], ignore_errors=True)

from tests.tiny import build_tiny_llama  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test's folder says what it needs (markers in pyproject.toml): tests/browser drives Chromium."""
    for item in items:
        if "browser" in Path(str(item.path)).relative_to(ROOT).parts[:2]:
            item.add_marker(pytest.mark.browser)


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
