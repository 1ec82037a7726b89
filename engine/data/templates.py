"""How a chat template behaves, probed once per template: the rendering side of masking (engine/data/masking.py).

`template_profile(tokenizer)` renders a few probe conversations and learns: the generation prompt, the
end-of-turn marker (what the template writes after every reply, learned from two probe conversations), how
the system prompt is placed (the template's own way; folded into the first user turn where the template
rejects or drops the system role, like Gemma-2; into the last user turn where the template writes it only
there, like Mistral-Nemo), and whether the template reads a `reasoning_content` field (else reasoning is
written into the reply as `<think>\\n...\\n</think>\\n\\n`, the convention of QwQ, DeepSeek-R1 and Qwen3).

`prepare` fits messages to a profile (reasoning, system prompt); `template_notes` says in the run log how
rows were fitted; `render` is the template's text with any template exception as a RenderError.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from engine.data.toolcalls import fit_tool_calls, has_tool_turns
from engine.sentences import said

Messages = list[dict[str, Any]]

# Replacement replies that no template alters (no outer whitespace, no tags) and whose first and last
# characters differ from each other's, so at least one of the two differs from any real reply at each end.
SENTINELS = ("\u27e6reply\u27e7", "\u27eaanswer\u27eb")
PROBE_SYSTEM, PROBE_USER_1, PROBE_USER_2 = "\u27e6system\u27e7", "\u27e6first\u27e7", "\u27e6second\u27e7"
PROBE_THOUGHT = "\u27e6thought\u27e7"
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")  # the names transformers passes to templates
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SYSTEM_JOINER = "\n\n"  # between a folded system prompt and the user text (Gemma-3's and Mistral's own choice)


class MaskingError(ValueError):
    """A conversation whose replies cannot be located exactly: `problem` is one sentence saying why and what to
    do, `turn` the 1-based turn of the row it concerns (None: the template as a whole)."""

    def __init__(self, problem: str, turn: int | None = None):
        self.problem, self.turn = problem, turn
        super().__init__(f"turn {turn}: {problem}" if turn is not None else problem)


class RenderError(ValueError):
    """The chat template raised; the message carries the template's own words."""


@dataclass(frozen=True)
class TemplateProfile:
    generation_prompt: str  # what add_generation_prompt appends; "" for templates without one (Mistral)
    closing: str | None  # the end-of-turn marker after every reply; "" when the template writes none
    system: str  # "native", "first_user" (folded into the first user turn) or "last_user"
    system_note: str  # the sentence the run log gets when a system prompt is folded; "" for "native"
    reads_reasoning: bool  # the template reads message.reasoning_content (or .reasoning / .thinking)
    markers: tuple[str, ...]  # added tokens that open or close turns: never part of a reply's opening
    openers: tuple[str, ...]  # added tokens that open turns: never taken for a reply's end-of-turn marker
    enders: re.Pattern | None  # whitespace then an added token that is not an opener: a turn's other endings
    user_header: str  # what the template writes between a reply's end-of-turn marker and the next user's text
    needs_tools: str  # the template's error without a tools list (Hermes-3's tool_use template); "" if none
    renders_tools: bool  # the template renders tool calls itself (it reads tool_calls); else the fallback
    reply_header: str  # what it writes right before a reply, from its last added token (`[/INST]`, `<|im_start|>..`)
    cuts_last_reasoning: bool  # the template cuts reasoning out of every reply, the last too (DeepSeek-R1's)
    string_arguments: bool = False  # tool calls' arguments must be a JSON string (DeepSeek's template adds them)
    nine_character_ids: bool = False  # tool call ids must be nine letters and digits (Mistral's templates)


# ---------------------------------------------------------------------------------------------- rendering


def render(tokenizer: Any, messages: Messages, add_generation_prompt: bool = False, tools: list | None = None) -> str:
    """The template's text for `messages`; any exception the template raises becomes a RenderError."""
    try:
        return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except Exception as error:  # noqa: BLE001 - TemplateError, TypeError, KeyError ...: all mean "cannot render"
        raise RenderError(_describe(error)) from error


def _describe(error: Exception) -> str:
    name = type(error).__name__
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{name}: {text}" if name != "TemplateError" or not text else text


def _template_source(tokenizer: Any) -> str:
    template = tokenizer.chat_template
    return "\n".join(template.values()) if isinstance(template, dict) else str(template or "")


# ---------------------------------------------------------------------------------------------- profile

_PROFILES: dict[tuple, TemplateProfile] = {}


def template_profile(tokenizer: Any) -> TemplateProfile:
    """How this tokenizer's chat template renders replies, system prompts and reasoning (cached per template)."""
    added = tuple(getattr(tokenizer, "added_tokens_encoder", {}) or {})
    key = (_template_source(tokenizer), tokenizer.bos_token, tokenizer.eos_token, added)
    if key not in _PROFILES:
        _PROFILES[key] = _probe(tokenizer)
    return _PROFILES[key]


def added_tokens(tokenizer: Any) -> list[str]:
    tokens = set(getattr(tokenizer, "added_tokens_encoder", {}) or {}) | set(tokenizer.all_special_tokens)
    return sorted((token for token in tokens if token), key=len, reverse=True)


def _probe(tokenizer: Any) -> TemplateProfile:
    first, second = {"role": "user", "content": PROBE_USER_1}, {"role": "user", "content": PROBE_USER_2}
    reply_1, reply_2 = ({"role": "assistant", "content": sentinel} for sentinel in SENTINELS)
    source = _template_source(tokenizer)
    needs_tools = _tools_error(tokenizer, [first, reply_1])
    tools = [] if needs_tools else None
    try:
        one_turn = render(tokenizer, [first, reply_1], tools=tools)
        prompt = render(tokenizer, [first], add_generation_prompt=True, tools=tools)
        prompt_plain = render(tokenizer, [first], tools=tools)
    except RenderError as error:
        raise MaskingError(f"the chat template cannot render a plain user/assistant conversation ({error}): fix "
                           "the template or pick a model whose template renders user/assistant turns.") from None
    shared = os.path.commonprefix([prompt, prompt_plain])
    if shared != prompt_plain:  # the plain render ends differently (Phi's eos): never cut inside a marker
        shared = shared[: _last_boundary(shared, added_tokens(tokenizer))]
    generation_prompt = prompt[len(shared):]
    try:
        two_turns = render(tokenizer, [first, reply_1, second, reply_2], tools=tools)
    except RenderError:  # a template for single exchanges: the one-turn probe is all there is to learn from
        two_turns = None
    closing, between = _closing(one_turn, two_turns, tokenizer)
    dialogue = [first, reply_1, second, reply_2] if two_turns is not None else [first, reply_1]
    system, system_note = _system_placement(tokenizer, dialogue, tools)
    reads_reasoning = bool(re.search(r"(\.|\[['\"])(" + "|".join(REASONING_FIELDS) + r")\b", source))
    tokens = added_tokens(tokenizer)
    openers = tuple(token for token in tokens if token in generation_prompt or token in between)
    markers = tuple(token for token in tokens if token in openers or token in (closing or ""))
    others = [re.escape(token) for token in tokens if token not in openers]
    enders = re.compile(r"\s*(?:" + "|".join(others) + ")") if others else None
    thinking = _with_reasoning({**reply_1, "reasoning_content": PROBE_THOUGHT}, reads_reasoning)
    try:
        cuts_last_reasoning = PROBE_THOUGHT not in render(tokenizer, [first, thinking], tools=tools)
    except RenderError:
        cuts_last_reasoning = False
    renders_tools = "tool_calls" in source
    string_arguments, nine_character_ids = _tool_call_needs(tokenizer) if renders_tools else (False, False)
    before_reply = one_turn.split(SENTINELS[0], 1)[0] if SENTINELS[0] in one_turn else ""
    header_at = max((before_reply.rfind(token) for token in tokens), default=-1)
    reply_header = before_reply[header_at:] if header_at >= 0 else ""
    return TemplateProfile(generation_prompt, closing, system, system_note, reads_reasoning, markers, openers, enders,
                           between.strip(), needs_tools, renders_tools, reply_header, cuts_last_reasoning,
                           string_arguments, nine_character_ids)


PROBE_TOOLS = [{"type": "function", "function": {"name": "probe", "description": "A probe.", "parameters": {
    "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}]
PROBE_CALL = [
    {"role": "user", "content": PROBE_USER_1},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_probe_0001", "type": "function", "function": {"name": "probe", "arguments": {"x": 1}}}]},
    {"role": "tool", "content": "1", "tool_call_id": "call_probe_0001", "name": "probe"},
    {"role": "assistant", "content": SENTINELS[0]},
]


def _tool_call_needs(tokenizer: Any) -> tuple[bool, bool]:
    """(arguments as a JSON string, ids of nine letters and digits): the first way of writing a tool call, as
    datasets give it first, that this template renders; (False, False) where it renders it as given, or none."""
    for needs in ((False, False), (True, False), (False, True), (True, True)):
        messages = fit_tool_calls(PROBE_CALL, string_arguments=needs[0], nine_character_ids=needs[1])
        if not fails(tokenizer, messages, tools=PROBE_TOOLS):
            return needs
    return False, False


def _tools_error(tokenizer: Any, messages: Messages) -> str:
    """The template's error for `messages` without tools, where it renders them with an empty tools list."""
    try:
        render(tokenizer, messages)
    except RenderError as error:
        return "" if fails(tokenizer, messages, tools=[]) else str(error)
    return ""


def _closing(one_turn: str, two_turns: str | None, tokenizer: Any) -> tuple[str | None, str]:
    """The end-of-turn marker: what follows a reply both when it ends the conversation and when a user turn
    follows, cut at a whole token or whitespace (never inside a marker), trailing whitespace dropped; and the
    text between that marker and the next user's words (the user turn's header)."""
    sentinel = SENTINELS[0]
    if sentinel not in one_turn:
        return None, ""
    after_last = one_turn.split(sentinel, 1)[1]
    if two_turns is None or sentinel not in two_turns or PROBE_USER_2 not in two_turns:
        return after_last.rstrip(), ""
    before_next = two_turns.split(sentinel, 1)[1].split(PROBE_USER_2, 1)[0]
    common = os.path.commonprefix([after_last, before_next])
    if common not in (after_last, before_next):
        common = common[: _last_boundary(common, added_tokens(tokenizer))]
    closing = common.rstrip()
    return closing, before_next[len(closing):]


def _last_boundary(text: str, tokens: list[str]) -> int:
    """The last position in `text` that ends whitespace or a whole added token: a cut there never splits a
    marker such as `<|endoftext|>` into `<|` and the rest."""
    boundary, position = 0, 0
    while position < len(text):
        token = next((t for t in tokens if text.startswith(t, position)), None)
        if token is not None:
            position += len(token)
            boundary = position
        elif text[position].isspace():
            position += 1
            boundary = position
        else:
            position += 1
    return boundary


def _system_placement(tokenizer: Any, dialogue: Messages, tools: list | None) -> tuple[str, str]:
    """Where the template writes a system prompt: its own way, or where the system text must be folded."""
    system = {"role": "system", "content": PROBE_SYSTEM}
    try:
        text = render(tokenizer, [system, *dialogue], tools=tools)
    except RenderError as error:
        return "first_user", (f"the chat template rejects the system role ({error}): the system prompt is folded "
                              "into the first user turn")
    if PROBE_SYSTEM in text:
        return "native", ""
    try:
        prompt = render(tokenizer, [system, *dialogue[:-1]], add_generation_prompt=True, tools=tools)
    except RenderError:
        prompt = ""
    if len(dialogue) > 2 and PROBE_SYSTEM in prompt and prompt.index(PROBE_SYSTEM) > prompt.find(PROBE_USER_1) >= 0:
        return "last_user", ("the chat template writes the system prompt only into the last user turn, and drops "
                             "it when a reply ends the conversation: it is folded into the last user turn")
    return "first_user", "the chat template drops the system role: the system prompt is folded into the first user turn"


def template_notes(conversations: list[Messages], tokenizer: Any, with_tools: bool = False) -> list[str]:
    """One sentence per way these conversations are adapted to the template, for the run log."""
    profile = template_profile(tokenizer)
    notes = []
    if not profile.renders_tools and (with_tools or any(map(has_tool_turns, conversations))):
        notes.append(said("engine.log.tools_as_text"))
    if profile.system != "native" and any(messages and messages[0]["role"] == "system" for messages in conversations):
        notes.append(profile.system_note)
    if not profile.reads_reasoning and any(
        message.get(key) for messages in conversations for message in messages for key in REASONING_FIELDS
    ):
        notes.append(said("engine.log.reasoning_as_text", opening=THINK_OPEN, closing=THINK_CLOSE))
    if profile.cuts_last_reasoning and any(
        _has_reasoning(message) for messages in conversations for message in messages
    ):
        notes.append(said("engine.log.reasoning_cut"))
    return notes


def _has_reasoning(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and (
        any(message.get(key) for key in REASONING_FIELDS) or THINK_CLOSE in (message.get("content") or ""))


# ---------------------------------------------------------------------------------------------- messages


def prepare(messages: Messages, profile: TemplateProfile, *, for_generation: bool = False) -> Messages:
    """The messages as this template should see them: reasoning where it reads it, the system prompt where it
    places it. `for_generation` (a prompt ending with a user turn) leaves a last-user-turn system to the template;
    a prompt ending with a tool result gets it folded, as training does (the template would drop it)."""
    out = [_with_reasoning(message, profile.reads_reasoning) for message in messages]
    if not out or out[0]["role"] != "system" or profile.system == "native":
        return out
    if profile.system == "last_user" and for_generation and out[-1]["role"] == "user":
        return out
    system, rest = out[0]["content"], out[1:]
    users = [index for index, message in enumerate(rest) if message["role"] == "user"]
    if not users:
        return out
    target = users[0] if profile.system == "first_user" else users[-1]
    if system.strip():
        rest[target] = {**rest[target], "content": system + SYSTEM_JOINER + rest[target]["content"]}
    return rest


def _with_reasoning(message: dict[str, Any], reads_reasoning: bool) -> dict[str, Any]:
    reasoning = next((message[key] for key in REASONING_FIELDS if message.get(key)), None)
    if reasoning is None or reads_reasoning:
        return dict(message)
    plain = {key: value for key, value in message.items() if key not in REASONING_FIELDS}
    plain["content"] = f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{message.get('content') or ''}"
    return plain


def fails(tokenizer: Any, messages: Messages, tools: list | None = None) -> bool:
    """Whether the template raises on these messages."""
    try:
        render(tokenizer, messages, tools=tools)
    except RenderError:
        return True
    return False
