"""The optional judge (eval.judge): an OpenAI-compatible chat-completions endpoint scores every model's answer to
each row, blind and in a random order. Plain Python (urllib of the standard library, no torch).

Per row, one request: the rubric as the system message; the question, the reference (where the row has one) and
the answers labelled A, B, ... as the user message, the models shuffled by a random.Random seeded with
judge.seed (the same config shows the same order; no model's name is ever sent). The judge replies with a JSON
object of letter -> score from 1 to 10, mapped back to the models. Every reply is kept as it came in judge.jsonl.

Failures: an endpoint that cannot be reached, refuses the key (401, 403) or does not know the model (404) ends
the judging with one sentence (the other figures stand); a reply that is no such JSON object, or an HTTP error
that may pass (429, 5xx), fails that row alone, which is counted and kept with its sentence.
"""

from __future__ import annotations

import json
import os
import random
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.config_eval import JudgeConfig
from engine.jobs.failures import EngineError
from engine.sentences import said

LOW, HIGH = 1, 10
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FATAL_STATUS = (401, 403, 404)
OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class JudgeError(EngineError):
    """The judge cannot be used at all (no key, unreachable, key refused); the message is one sentence."""


class _RowFailed(Exception):  # noqa: N818 - one row's reply that cannot be read: counted, not raised further
    """One row's reply that cannot be used; its message is the sentence kept for that row."""


@dataclass(frozen=True)
class Item:
    """What one request asks: a row's question, its reference (None: the general prompts have none) and each
    model's answer."""

    key: int
    question: str
    reference: str | None
    answers: dict[str, str]


@dataclass
class Verdicts:
    """The judge's scores (model -> row key -> score), its raw lines for judge.jsonl, the rows it failed and the
    sentence that ended the judging early, if one did."""

    scores: dict[str, dict[int, float]] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    error: str | None = None

    def means(self) -> dict[str, float]:
        return {name: sum(given.values()) / len(given) for name, given in self.scores.items() if given}

    def summary(self, asked: int) -> dict[str, Any]:
        scored = len({key for given in self.scores.values() for key in given})
        return {"rows": asked, "scored": scored, "failed": self.failed, "error": self.error}


def api_key(config: JudgeConfig) -> str | None:
    """The key from the environment variable the config names; JudgeError when it names one that is not set."""
    if not config.api_key_env:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise JudgeError(said("engine.judge.no_key", env=config.api_key_env))
    return key


def request_body(config: JudgeConfig, item: Item, order: list[str]) -> dict[str, Any]:
    """The chat-completions request for one row, the answers in `order` (the models, never named)."""
    parts = [f"Question:\n{item.question}"]
    if item.reference is not None:
        parts.append(f"Reference answer:\n{item.reference}")
    letters = LETTERS[:len(order)]
    parts += [f"Answer {letter}:\n{item.answers[name]}" for letter, name in zip(letters, order, strict=True)]
    example = json.dumps({letter: 5 for letter in letters})
    parts.append(f"Reply with one JSON object only, each answer's letter to its score from {LOW} to {HIGH}, "
                 f"like {example}.")
    return {"model": config.model, "temperature": 0,
            "messages": [{"role": "system", "content": config.rubric},
                         {"role": "user", "content": "\n\n".join(parts)}]}


def parse_scores(content: Any, letters: str) -> dict[str, float]:
    """letter -> score from the judge's reply text; _RowFailed with the reason when it is no such object."""
    if not isinstance(content, str):
        raise _RowFailed("the reply has no message content")
    found = OBJECT.search(content)
    try:
        scores = json.loads(found.group(0)) if found else None
    except json.JSONDecodeError:
        scores = None
    if not isinstance(scores, dict):
        raise _RowFailed("the reply holds no JSON object of scores")
    out = {}
    for letter in letters:
        score = scores.get(letter)
        if isinstance(score, bool) or not isinstance(score, int | float) or not LOW <= score <= HIGH:
            raise _RowFailed(f"the reply gives answer {letter} no score from {LOW} to {HIGH}")
        out[letter] = float(score)
    return out


def post(config: JudgeConfig, key: str | None, body: dict[str, Any]) -> Any:
    """The message content of the endpoint's reply; JudgeError for a failure that ends the judging, _RowFailed
    for one that may pass."""
    url = config.base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
            text = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        if error.code in (401, 403) and config.api_key_env:
            raise JudgeError(said("engine.judge.refused_key", url=url, env=config.api_key_env,
                                  code=error.code)) from None
        if error.code in (401, 403):
            raise JudgeError(said("engine.judge.needs_key", url=url, code=error.code)) from None
        if error.code in FATAL_STATUS:
            raise JudgeError(said("engine.judge.not_found", url=url, code=error.code,
                                  model=repr(config.model))) from None
        raise _RowFailed(f"the judge answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise JudgeError(said("engine.judge.unreachable", url=url, reason=str(reason))) from None
    try:
        return json.loads(text)["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        raise _RowFailed("the reply is no chat completion (no choices[0].message.content)") from None


Poll = Callable[[], None]  # called before each request: raises to stop the judging (a stop request)


def judge(config: JudgeConfig, items: list[Item], part: str, poll: Poll = lambda: None,
          rng: random.Random | None = None) -> Verdicts:
    """Every item scored (see the module docstring); `part` names the set in judge.jsonl ("test", "general")."""
    key = api_key(config)
    rng = rng or random.Random(config.seed)
    verdicts = Verdicts(scores={name: {} for item in items[:1] for name in item.answers})
    for item in items:
        poll()
        order = rng.sample(sorted(item.answers), len(item.answers))
        line: dict[str, Any] = {"set": part, "row": item.key, "order": order}
        try:
            content = post(config, key, request_body(config, item, order))
            line["reply"] = content
            scores = parse_scores(content, LETTERS[:len(order)])
        except _RowFailed as failure:
            verdicts.failed += 1
            line["error"] = str(failure)
        except JudgeError as error:
            verdicts.error = str(error)
            line["error"] = verdicts.error
            verdicts.lines.append(line)
            break
        else:
            line["scores"] = {name: scores[letter] for letter, name in zip(LETTERS, order, strict=False)}
            for name, score in line["scores"].items():
                verdicts.scores.setdefault(name, {})[item.key] = score
        verdicts.lines.append(line)
    return verdicts
