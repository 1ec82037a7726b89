"""Interface language: gr.I18n built from assets/locales/{en,zh}.json.

Static labels are translated in the browser (gr.I18n; switch in the footer's Settings panel or by the
browser's language). English help texts of config fields come from engine.config (one source); the
Chinese ones live in zh.json. Messages built at run time use `message()` with the request's language.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import DataConfig, MethodConfig, field_help
from webui.engine_cli import REPO_ROOT
from webui.forms import FIELDS

LOCALES_DIR = REPO_ROOT / "assets" / "locales"
LANGUAGES = ("en", "zh")


@lru_cache(maxsize=1)
def translations() -> dict[str, dict[str, str]]:
    tables = {lang: json.loads((LOCALES_DIR / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}
    for field in FIELDS:
        tables["en"].setdefault(f"help.{field.key}", field.help)
    tables["en"].setdefault("help.data.format", field_help(DataConfig, "format"))
    tables["en"].setdefault("help.method.name", field_help(MethodConfig, "name"))
    return tables


@lru_cache(maxsize=1)
def i18n() -> gr.I18n:
    return gr.I18n(**translations())


def t(key: str) -> Any:
    """A translatable label for a component (resolved in the browser)."""
    return i18n()(key)


def language(request: gr.Request | None) -> str:
    header = (request.headers.get("accept-language", "") if request is not None else "").lower()
    return "zh" if header.startswith("zh") else "en"


def message(request: gr.Request | None, key: str, **values: Any) -> str:
    """A run-time message in the visitor's language (English when a key is missing in theirs)."""
    tables = translations()
    text = tables[language(request)].get(key) or tables["en"][key]
    return text.format(**values)


def failure(request: gr.Request | None, text: str) -> gr.Error:
    """An error toast for the visitor: its title in their language, `text` as given (no traceback in the log)."""
    return gr.Error(text, title=message(request, "msg.error_title"), print_exception=False)


def locale_file(lang: str) -> Path:
    return LOCALES_DIR / f"{lang}.json"
