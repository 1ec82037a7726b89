"""The Chat tab's sampling settings as form fields of engine.sampling.SamplingConfig, declared as the Train form's
options are (webui/forms/fields.py): each widget's kind, default, help and bounds come from the schema, so the page
samples by default exactly as the worker and the terminal chat do. The slider ranges are the comfortable part of
what the schema allows; the schema still checks every value the page sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.sampling import SamplingConfig, parse_sampling
from webui.forms.fields import FormField

MAX_NEW_TOKENS = FormField(SamplingConfig, "max_new_tokens", (1, 2048, 1))
TEMPERATURE = FormField(SamplingConfig, "temperature", (0, 2, 0.05))
TOP_P = FormField(SamplingConfig, "top_p", (0.05, 1, 0.05))
TOP_K = FormField(SamplingConfig, "top_k", (0, 200, 1))
REPETITION_PENALTY = FormField(SamplingConfig, "repetition_penalty", (1, 2, 0.05))
SEED = FormField(SamplingConfig, "seed")
# The sampling widgets in the order the Chat tab lists them as a handler's inputs (to_sampling zips with it).
SAMPLING_OPTIONS: tuple[FormField, ...] = (MAX_NEW_TOKENS, TEMPERATURE, TOP_P, TOP_K, REPETITION_PENALTY, SEED)


def to_sampling(values: Sequence[Any]) -> SamplingConfig:
    """The sampling widgets' values, in SAMPLING_OPTIONS' order, as one SamplingConfig.

    A slider may send a whole number as a float (128.0): it is read as the integer it is; an empty seed box (None)
    draws a new seed for every reply. engine.sampling.SamplingError names a value the schema refuses."""
    raw = {}
    for field, value in zip(SAMPLING_OPTIONS, values, strict=True):
        whole = field.kind == "integer" or field.info.annotation is int
        raw[field.name] = int(value) if whole and isinstance(value, float) and value.is_integer() else value
    return parse_sampling(raw)
