"""The fixtures every browser test module shares: a server on a fresh workspace per module, the browser, a page.

They live here rather than in tests/browser/pages.py so that a test names them as parameters without importing
them (an import that only feeds pytest's fixture lookup reads as unused, and the parameter as redefining it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, open_page, start_server, stop_server, sync_api


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, workspace) of a server started for this test module on a fresh workspace."""
    workspace = tmp_path_factory.mktemp("workspace")
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
