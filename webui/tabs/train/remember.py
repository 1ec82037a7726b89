"""The Train form as the visitor left it. The config the preview shows is kept in the visitor's browser
(localStorage, through gr.BrowserState) each time the form changes, and put back into the form when the page opens
again: after a reload, a reopened browser or a restart of launch.py, Start trains what the form shows, not the
demo's defaults the page was built with. It comes back through the same path as a saved config
(handlers.form_filled); a kept form that no longer fits (a dataset deleted since, a schema from another version)
is dropped and the page opens with its defaults.

gr.BrowserState encrypts what it keeps with a secret; a secret kept in the workspace (made once) lets the form
come back after a restart, which a fresh secret per start would not.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from engine.config import ConfigError, parse_config
from webui.context import AppContext
from webui.jobs.paths import PathError
from webui.tabs.train.handlers import form_filled
from webui.tabs.train.panels import TrainTab

STORAGE_KEY = "workbench-train-form"
log = logging.getLogger(__name__)


def browser_secret(workspace: Path) -> str:
    """The workspace's key for what the page keeps in browsers (made on first use, readable by its owner only)."""
    path = workspace / ".cache" / "browser-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another server on this workspace made it first
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(secrets.token_urlsafe(24))
    return path.read_text(encoding="utf-8").strip()


def remembered_form(ctx: AppContext) -> gr.BrowserState:
    return gr.BrowserState(None, storage_key=STORAGE_KEY, secret=browser_secret(ctx.workspace))


def restore(ctx: AppContext, tab: TrainTab, kept: str | None, request: gr.Request | None = None) -> dict[Any, Any]:
    """The page opened: the form as this browser left it (its kept config), or nothing changed without one (every
    output skipped: an empty dict would be read as one value for 48 outputs)."""
    unchanged = {component: gr.skip() for component in tab.form_inputs()}
    if not kept:
        return unchanged
    try:
        return form_filled(ctx, tab, parse_config(yaml.safe_load(kept)), request)
    except (yaml.YAMLError, ConfigError, PathError) as error:
        log.info("the form kept in a browser no longer fits (%s): the page opens with its defaults", error)
        return unchanged
