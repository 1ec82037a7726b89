"""Interface language: gr.I18n built from assets/locales/{en,zh}.json.

Static labels are translated in the browser (gr.I18n). The language is the browser's, until the visitor picks
one in the footer's Settings panel: language.js (in the page's head, see language_head) then keeps the choice
in a cookie, reloads the page in it and applies it on every later visit. English help texts of config fields
come from engine.config (one source); the Chinese ones live in zh.json. Messages built at run time use
`message()` in the request's language: the cookie's, else the Accept-Language header's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import DataConfig, MethodConfig, field_help
from webui.forms.fields import OPTIONS
from webui.forms.sampling import SAMPLING_OPTIONS
from webui.jobs.commands import REPO_ROOT

LOCALES_DIR = REPO_ROOT / "assets" / "locales"
LANGUAGES = ("en", "zh")
LANGUAGE_COOKIE = "wb_lang"  # the locale chosen in Settings (a Gradio locale code: en, zh-CN, ...), set by language.js
LANGUAGE_SCRIPT = Path(__file__).with_name("language.js")


@lru_cache(maxsize=1)
def translations() -> dict[str, dict[str, str]]:
    tables = {lang: json.loads((LOCALES_DIR / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}
    for option in (*OPTIONS, *SAMPLING_OPTIONS):
        tables["en"].setdefault(f"help.{option.key}", option.help)
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
    """'zh' or 'en': the language chosen in the page's Settings, else the browser's first language."""
    if request is None:
        return "en"
    chosen = request.cookies.get(LANGUAGE_COOKIE) or request.headers.get("accept-language", "")
    return "zh" if chosen.lower().startswith("zh") else "en"


def language_head() -> str:
    """The <script> for the page's head that keeps the language chosen in Settings (webui/language.js)."""
    return f"<script>({LANGUAGE_SCRIPT.read_text(encoding='utf-8')})({json.dumps(LANGUAGE_COOKIE)});</script>"


COUNTS = ("n", "rows")  # the values a message counts by: "KEY.one" is its wording for one ("1 row", not "1 rows")


def message(request: gr.Request | None, key: str, **values: Any) -> str:
    """A run-time message in the visitor's language (English when a key is missing in theirs); where it counts
    one thing (a value named in COUNTS is 1) and KEY.one exists, that wording."""
    tables = translations()
    table = tables[language(request)]
    one = any(str(values.get(name)) == "1" for name in COUNTS)
    text = (table.get(f"{key}.one") if one else None) or table.get(key) or tables["en"][key]
    return text.format(**values)


def words(request: gr.Request | None) -> Callable[..., str]:
    """message() bound to the visitor's language: `say = words(request)`, then `say(KEY, **values)`."""
    return lambda key, **values: message(request, key, **values)


def pairs_label(request: gr.Request | None) -> Callable[[str, int], str]:
    """The dataset lists' label of a pairs file rated in the chat ("pairs/chat-pairs.jsonl · 3 pairs"), in the
    visitor's language."""
    return lambda name, n: message(request, "data.pairs_listed", name=name, n=n)


def failure(request: gr.Request | None, text: str) -> gr.Error:
    """An error toast for the visitor: its title in their language, `text` as given (no traceback in the log)."""
    return gr.Error(text, title=message(request, "msg.error_title"), print_exception=False)


def locale_file(lang: str) -> Path:
    return LOCALES_DIR / f"{lang}.json"
