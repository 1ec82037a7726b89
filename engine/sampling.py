"""SamplingConfig: how the chat picks each next token, one typed section of the schema for the page, the terminal
chat and the chat worker alike (one place where the defaults and the allowed ranges live).

Plain Python (pydantic): the web process imports it to build the Chat tab's sampling widgets (webui/forms/
sampling.py). It lives beside engine/config.py, below it, only to keep that file short; a value it refuses gets
a sentence that names the field, as a config's does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.config_read import value_problem
from engine.errors import UserError
from engine.sentences import said

MAX_NEW_TOKENS = 8192


class SamplingConfig(BaseModel):
    """The chat's generation settings. Strict: a JSON request's "5" or true is refused, not read as a number."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    max_new_tokens: int = Field(256, ge=1, le=MAX_NEW_TOKENS, description=(
        "The longest reply, in tokens (a token is a word or a piece of one); the reply stops earlier where the "
        "model ends its turn."))
    temperature: float = Field(0.0, ge=0, le=10, description=(
        "How adventurous the choice of each next token is: 0 always takes the likeliest one (greedy: the same "
        "reply every time), higher values pick less likely tokens more often."))
    top_p: float = Field(1.0, gt=0, le=1, description=(
        "Sample only from the likeliest tokens whose probabilities add up to this share (1 keeps them all); "
        "unused when temperature is 0."))
    top_k: int = Field(50, ge=0, description=(
        "Sample only from the k likeliest tokens (0 keeps them all); unused when temperature is 0."))
    repetition_penalty: float = Field(1.0, gt=0, le=10, description=(
        "Above 1 makes the model less likely to repeat tokens it has already written (1 is off)."))
    seed: int | None = Field(0, description=(
        "Random seed for sampling: the same seed, settings and conversation give the same reply; left empty "
        "(null), a new one is drawn for every reply."))

    @property
    def greedy(self) -> bool:
        """Temperature 0 means no sampling: always the likeliest token (top_p, top_k and seed are then unused)."""
        return self.temperature == 0


SAMPLING_FIELDS: tuple[str, ...] = tuple(SamplingConfig.model_fields)


class SamplingError(UserError, ValueError):
    """Sampling settings that cannot be used; `issues` holds one sentence per refused field."""

    def __init__(self, issues: list[str]):
        self.issues = issues
        super().__init__(issues[0] if len(issues) == 1 else " ".join(issues))  # one: the error keeps its key


def _sentence(error: dict[str, Any]) -> str:
    """One pydantic error as a sentence that names the field: "temperature is -1: it must be ... ." (keyed where
    engine.config_read.value_problem keys its type, so the page words it in the visitor's language)."""
    name = ".".join(map(str, error["loc"])) or "the settings"
    if error["type"] == "extra_forbidden":
        return said("engine.sampling.unknown", name=name, fields=", ".join(SAMPLING_FIELDS))
    return value_problem(name, error, lower=lambda text: text[:1].lower() + text[1:])


def parse_sampling(raw: dict[str, Any]) -> SamplingConfig:
    """A SamplingConfig from plain values (a chat request, CLI flags, the page's widgets); a field left out or None
    takes its default (seed None stays None: a new seed each reply). SamplingError names every refused field."""
    values = {name: value for name, value in raw.items() if value is not None or name == "seed"}
    try:
        return SamplingConfig.model_validate(values)
    except ValidationError as error:
        raise SamplingError([_sentence(e) for e in error.errors()]) from None
