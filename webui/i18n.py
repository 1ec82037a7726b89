"""Interface language: gr.I18n built from assets/locales/{en,zh}.json.

Static labels are translated in the browser (gr.I18n). The language is the browser's, until the visitor picks
one in the footer's Settings panel: language.js (in the page's head, see language_head) then keeps the choice
in a cookie, reloads the page in it and applies it on every later visit. English help texts of config fields
come from engine.config (one source); the Chinese ones live in zh.json. Messages built at run time use
`message()` in the request's language: the cookie's, else the Accept-Language header's. The engine's sentences
(a failed run's error, a refused dataset: engine.sentences) carry their message key: their English comes from
engine.sentences.ENGLISH, their Chinese from zh.json, and `sentence()` (or a message's value that is one) words
them in the visitor's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import DataConfig, MethodConfig, field_help
from engine.sentences import ENGLISH, Sentence, worded
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
    for key, text in ENGLISH.items():  # the engine's sentences: their English is the engine's own
        tables["en"].setdefault(key, text)
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
    one thing (a value named in COUNTS is 1) and KEY.one exists, that wording. A value that is an engine's
    Sentence (an error's reason) is worded in that language too."""
    tables = translations()
    table = tables[language(request)]
    one = any(str(values.get(name)) == "1" for name in COUNTS)
    text = (table.get(f"{key}.one") if one else None) or table.get(key) or tables["en"][key]
    return text.format(**{name: sentence(request, value) if isinstance(value, Sentence) else value
                          for name, value in values.items()})


def sentence(request: gr.Request | None, text: Any) -> str:
    """An engine's sentence (a Sentence, or a UserError's message) in the visitor's language where it has a
    message key the locale words; else, and in English, exactly as the engine wrote it."""
    said = getattr(text, "sentence", text)
    lang = language(request)
    return str(said) if lang == "en" else worded(said, translations()[lang])


def scope_sentence(text: Any, scope: dict) -> str:
    """`sentence` for an ASGI request (a middleware's answer, before Gradio: engine.serve.hosts.HostGuard)."""
    from starlette.requests import Request

    return sentence(Request(scope), text)  # a Starlette Request: the cookies and headers `language` reads


def sentences(request: gr.Request | None, error: Exception) -> str:
    """A refusal's sentences in the visitor's language: a ConfigError's issues (each worded), else its message."""
    return " ".join(sentence(request, issue) for issue in getattr(error, "issues", [error]))


class Words:
    """message() bound to the visitor's language: `say = words(request)`, then `say(KEY, **values)`; and
    `say.sentence(error)` for an engine's sentence (see `sentence`)."""

    def __init__(self, request: gr.Request | None):
        self.request = request

    def __call__(self, key: str, **values: Any) -> str:
        return message(self.request, key, **values)

    def sentence(self, text: Any) -> str:
        return sentence(self.request, text)


def words(request: gr.Request | None) -> Words:
    """A Words in the visitor's language."""
    return Words(request)


def pairs_label(request: gr.Request | None) -> Callable[[str, int], str]:
    """The dataset lists' label of a pairs file rated in the chat ("pairs/chat-pairs.jsonl · 3 pairs"), in the
    visitor's language."""
    return lambda name, n: message(request, "data.pairs_listed", name=name, n=n)


def failure(request: gr.Request | None, text: str) -> gr.Error:
    """An error toast for the visitor: its title in their language, `text` as given (no traceback in the log)."""
    return gr.Error(text, title=message(request, "msg.error_title"), print_exception=False)


def locale_file(lang: str) -> Path:
    return LOCALES_DIR / f"{lang}.json"
