"""The fixtures every browser test module shares: a server on a fresh workspace per module, the browser, a page.

They live here rather than in tests/browser/pages.py so that a test names them as parameters without importing
them (an import that only feeds pytest's fixture lookup reads as unused, and the parameter as redefining it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.pages import (
    CHROMIUM,
    CHROMIUM_ARGS,
    open_page,
    share_engine_answers,
    start_server,
    stop_server,
    sync_api,
)


@pytest.fixture(scope="session")
def engine_answers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of engine answers (webui.jobs.commands.EngineCache: inspect-data, plan) for every server this test
    process starts, as a user's later launches on one workspace share theirs. An answer is keyed by all it depends on
    (the file's content, the model's files, the options, the engine's code), so a module only ever reads the answer
    to its own question; the starter set's inspection, which every page asks for as it opens, then runs in one engine
    process per pytest worker instead of one per module. A module whose tests need the first, uncached answer (a
    visitor waiting for the engine process) sets FRESH_ENGINE_ANSWERS = True."""
    return tmp_path_factory.mktemp("engine-answers")


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           engine_answers: Path) -> Iterator[tuple[str, Path]]:
    """(url, workspace) of a server started for this test module on a fresh workspace (with the shared engine
    answers, unless the module sets FRESH_ENGINE_ANSWERS)."""
    workspace = tmp_path_factory.mktemp("workspace")
    if not getattr(request.module, "FRESH_ENGINE_ANSWERS", False):
        share_engine_answers(workspace, engine_answers)
    module = request.module.__name__.rsplit(".", 1)[-1]
    proc, url = start_server(workspace, f"server-{module}.log")
    yield url, workspace
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server[0])
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def shared_page(browser, server):
    """One page for the tests of a module that go on from where the one before left it (each says what it needs
    of the page): opening a page costs about 8 s of CPU (Chromium building Gradio's page, the server answering its
    load events), as much as a reload. Opened at its first test, closed with the module, so a module puts its tests
    that share it last: the open page's timers keep costing CPU while other tests run."""
    page = open_page(browser, server[0])
    yield page
    page.context.close()
