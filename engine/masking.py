"""Which characters of a rendered conversation to train on, exactly, under any chat template.

A template renders a whole conversation; training trains on the assistant replies as that render writes them,
each with the template's end-of-turn marker, and on nothing else (system and user text, role headers, default
system prompts the template inserts, what it appends after the last message). Templates are not assumed to be
prefix-stable: some cut the reasoning out of earlier replies (QwQ, DeepSeek-R1, Qwen3), open the generation
prompt with `<think>`, append eos after the last message (Phi-3.5) or write the system prompt into the last
user turn only (Mistral-Nemo).

How a reply is located: the conversation is rendered once (`full`), then twice more with that one reply
replaced by a sentinel; the characters where `full` differs from both renders are the reply as the template
wrote it (two sentinels with different first and last characters, so a reply that happens to begin or end like
one sentinel is still bounded exactly). The span then grows over
- the reply's opening the template writes after the assistant header: the text between the end of the
  generation prompt (`add_generation_prompt`) and the reply, such as Qwen3's `<think>...</think>` block;
- the end-of-turn marker: what the template writes after every reply (`<|im_end|>`, `<|eot_id|>`,
  `<end_of_turn>`, `</s>`, `<|end|>`), learned once per template from two probe conversations.
Nothing else is trained, so a template's extra text after the last message (Phi's eos) stays masked.

Per template, once (`template_profile`): the generation prompt, the end-of-turn marker, how the system
prompt is placed (the template's own way; folded into the first user turn where the template rejects or drops
the system role, like Gemma-2; into the last user turn where the template writes it only there, like
Mistral-Nemo), and whether the template reads a `reasoning_content` field (else reasoning is written into the
reply as `<think>\\n...\\n</think>\\n\\n`, the convention of QwQ, DeepSeek-R1 and Qwen3).

`{% generation %}` markers (`return_assistant_tokens_mask`) are not used: almost no template a model ships
carries them, and locating replies by rendering works for those that do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from engine.toolcalls import has_tool_turns, plain_tool_messages

Messages = list[dict[str, Any]]
Span = tuple[int, int]

# Replacement replies that no template alters (no outer whitespace, no tags) and whose first and last
# characters differ from each other's, so at least one of the two differs from any real reply at each end.
SENTINELS = ("\u27e6reply\u27e7", "\u27eaanswer\u27eb")
PROBE_SYSTEM, PROBE_USER_1, PROBE_USER_2 = "\u27e6system\u27e7", "\u27e6first\u27e7", "\u27e6second\u27e7"
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


def _added_tokens(tokenizer: Any) -> list[str]:
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
        shared = shared[: _last_boundary(shared, _added_tokens(tokenizer))]
    generation_prompt = prompt[len(shared):]
    try:
        two_turns = render(tokenizer, [first, reply_1, second, reply_2], tools=tools)
    except RenderError:  # a template for single exchanges: the one-turn probe is all there is to learn from
        two_turns = None
    closing, between = _closing(one_turn, two_turns, tokenizer)
    dialogue = [first, reply_1, second, reply_2] if two_turns is not None else [first, reply_1]
    system, system_note = _system_placement(tokenizer, dialogue, tools)
    reads_reasoning = bool(re.search(r"(\.|\[['\"])(" + "|".join(REASONING_FIELDS) + r")\b", source))
    tokens = _added_tokens(tokenizer)
    openers = tuple(token for token in tokens if token in generation_prompt or token in between)
    markers = tuple(token for token in tokens if token in openers or token in (closing or ""))
    others = [re.escape(token) for token in tokens if token not in openers]
    enders = re.compile(r"\s*(?:" + "|".join(others) + ")") if others else None
    return TemplateProfile(generation_prompt, closing, system, system_note, reads_reasoning, markers, openers, enders,
                           between.strip(), needs_tools, "tool_calls" in source)


def _tools_error(tokenizer: Any, messages: Messages) -> str:
    """The template's error for `messages` without tools, where it renders them with an empty tools list."""
    try:
        render(tokenizer, messages)
    except RenderError as error:
        return "" if _fails(tokenizer, messages, tools=[]) else str(error)
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
        common = common[: _last_boundary(common, _added_tokens(tokenizer))]
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
        notes.append("the chat template cannot render tool calls: tools, calls and results are written as text "
                     "(<tools>, <tool_call>, <tool_response>; see the README)")
    if profile.system != "native" and any(messages and messages[0]["role"] == "system" for messages in conversations):
        notes.append(profile.system_note)
    if not profile.reads_reasoning and any(
        message.get(key) for messages in conversations for message in messages for key in REASONING_FIELDS
    ):
        notes.append(f"the chat template reads no reasoning field: reasoning is written into the reply as "
                     f"{THINK_OPEN}...{THINK_CLOSE} before its text")
    return notes


# ---------------------------------------------------------------------------------------------- messages


def prepare(messages: Messages, profile: TemplateProfile, *, for_generation: bool = False) -> Messages:
    """The messages as this template should see them: reasoning where it reads it, the system prompt where it
    places it. `for_generation` (a prompt ending with a user turn) leaves a last-user-turn system to the template."""
    out = [_with_reasoning(message, profile) for message in messages]
    if not out or out[0]["role"] != "system" or profile.system == "native":
        return out
    if profile.system == "last_user" and for_generation:
        return out
    system, rest = out[0]["content"], out[1:]
    users = [index for index, message in enumerate(rest) if message["role"] == "user"]
    if not users:
        return out
    target = users[0] if profile.system == "first_user" else users[-1]
    if system.strip():
        rest[target] = {**rest[target], "content": system + SYSTEM_JOINER + rest[target]["content"]}
    return rest


def _with_reasoning(message: dict[str, Any], profile: TemplateProfile) -> dict[str, Any]:
    reasoning = next((message[key] for key in REASONING_FIELDS if message.get(key)), None)
    if reasoning is None or profile.reads_reasoning:
        return dict(message)
    plain = {key: value for key, value in message.items() if key not in REASONING_FIELDS}
    plain["content"] = f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{message.get('content') or ''}"
    return plain


# ---------------------------------------------------------------------------------------------- spans


def render_with_spans(messages: Messages, tokenizer: Any, tools: list[dict] | None = None) -> tuple[str, list[Span]]:
    """The conversation (and its tools, None where the row has no tools column) through the chat template, and
    the character spans of the assistant replies to train on, each with its end-of-turn marker. MaskingError
    (naming the turn) where a reply cannot be located."""
    profile = template_profile(tokenizer)
    prepared, fitted = _fit(messages, tools, profile)
    if profile.needs_tools and fitted is None:
        raise MaskingError(f"the chat template fails without a tools list ({profile.needs_tools}), so it is a tool-use "
                           "template: give the rows a 'tools' column (an empty list will do), or use the model's "
                           "plain chat template.")
    first_user = next((number for number, message in enumerate(messages, 1) if message["role"] == "user"), 1)
    full = _render_or_explain(tokenizer, prepared, fitted, lambda k: _fit(messages[:k], tools, profile),
                              range(first_user, len(messages) + 1))
    replies = iter([number for number, message in enumerate(messages, 1) if message["role"] == "assistant"])
    spans: list[Span] = []
    floor = 0
    for index, message in enumerate(prepared):
        if message["role"] != "assistant":
            continue
        turn = next(replies)  # folding and the tool fallback merge other turns, never replies
        start, end = _reply_region(tokenizer, prepared, index, full, turn, fitted)
        if start < floor:
            raise MaskingError(
                "the chat template writes this reply before the end of the previous reply, so it cannot be located "
                "for masking: use a template that renders the turns in order.", turn)
        start = _with_opening(full, floor, start, profile,
                              lambda: render(tokenizer, prepared[:index], add_generation_prompt=True, tools=fitted))
        end = _with_closing(full, end, profile, turn)
        spans.append((start, end))
        floor = end
    return full, spans


def _fit(messages: Messages, tools: list[dict] | None, profile: TemplateProfile) -> tuple[Messages, list | None]:
    """The messages and tools argument for this template: tool turns as text where it cannot render them, an
    empty tools list only where the template needs one, then reasoning and the system prompt (prepare)."""
    if not profile.renders_tools and (tools or has_tool_turns(messages)):
        messages, tools = plain_tool_messages(messages, tools), None
    elif not tools and not profile.needs_tools:
        tools = None  # an empty list is no tools (Mistral would write an empty, unclosed tool list)
    return prepare(messages, profile), tools


def _render_or_explain(tokenizer: Any, prepared: Messages, tools: list | None, fit_first: Any, turns: range) -> str:
    """The render; where the template raises, a MaskingError naming the first turn k (of `turns`: from the first
    user turn on, since shorter starts need not render) such that the row's first k turns, fitted by
    `fit_first(k)`, cannot be rendered."""
    try:
        return render(tokenizer, prepared, tools=tools)
    except RenderError as error:
        failing = next((k for k in turns if _fails(tokenizer, *fit_first(k))), None)
        raise MaskingError(f"the chat template fails on this conversation ({error}): change the row or the "
                           "template.", failing) from None


def _fails(tokenizer: Any, messages: Messages, tools: list | None = None) -> bool:
    try:
        render(tokenizer, messages, tools=tools)
    except RenderError:
        return True
    return False


def _reply_region(tokenizer: Any, messages: Messages, index: int, full: str, turn: int, tools: list | None) -> Span:
    """Where the template wrote messages[index] (its text, its tool calls) in `full`: the characters that change
    with it."""
    starts, ends = [], []
    for sentinel in SENTINELS:
        variant = [*messages[:index], _replaced(messages[index], sentinel), *messages[index + 1:]]
        try:
            other = render(tokenizer, variant, tools=tools)
        except RenderError as error:
            raise MaskingError(
                f"the chat template renders this conversation but fails when the reply's text changes ({error}), so "
                "the reply cannot be located for masking: use a template that renders any reply.", turn) from None
        if other == full:
            raise MaskingError(
                "the chat template does not write this assistant reply into the conversation, so there is nothing "
                "to train on: remove the turn or use a template that renders every reply.", turn)
        prefix = len(os.path.commonprefix([full, other]))
        room = min(len(full), len(other)) - prefix
        suffix = len(os.path.commonprefix([full[::-1][:room], other[::-1][:room]]))
        starts.append(prefix)
        ends.append(len(full) - suffix)
    return min(starts), max(ends)


def _replaced(message: dict[str, Any], sentinel: str) -> dict[str, Any]:
    """The message with its text, and the name and arguments of each tool call, swapped for the sentinel."""
    replaced = {**message, "content": sentinel}
    if message.get("tool_calls"):
        replaced["tool_calls"] = [{**call, "function": {"name": sentinel, "arguments": {}}}
                                  for call in message["tool_calls"]]
    return replaced


def _with_opening(full: str, floor: int, start: int, profile: TemplateProfile, prompt: Any) -> int:
    """Move the start back to where the reply begins when the template writes part of it before the varying text
    (Qwen3's `<think>` block, Mistral's `[TOOL_CALLS][{"name": "`): to the end of the generation prompt, else
    to the end of `prompt()` (the conversation before the reply, rendered with the generation prompt) where the
    full render begins with it; never back over another turn."""
    header = profile.generation_prompt
    if header and full.endswith(header, floor, start):
        return start
    found = full.rfind(header, floor, start) if header else -1
    if found >= 0 and not _crosses_turn(full[found + len(header): start], profile, header):
        return found + len(header)
    try:
        before = prompt()
    except RenderError:
        return start
    if floor <= len(before) <= start and full.startswith(before):
        return start if _crosses_turn(full[len(before):start], profile) else len(before)
    return start


def _with_closing(full: str, end: int, profile: TemplateProfile, turn: int) -> int:
    """Move the end past the end-of-turn marker that follows the reply."""
    if profile.closing and full.startswith(profile.closing, end):
        return end + len(profile.closing)
    if profile.closing:  # the template's own text after the reply (a tool call's `"}}\n</tool_call>`), then the marker
        found_at = full.find(profile.closing, end)
        if found_at >= 0 and not _crosses_turn(full[end:found_at], profile):
            return found_at + len(profile.closing)
    found = profile.enders.match(full, end) if profile.enders else None
    if found:  # a template that ends this turn differently (Llama's <|eom_id|>): the added token right after
        return found.end()
    if not profile.closing:
        return end  # the template writes no end-of-turn marker at all
    raise MaskingError(
        f"the chat template does not end this reply with its end-of-turn marker {profile.closing!r} (it writes "
        f"{full[end:end + 24]!r}), so the model could not learn where the reply ends: fix the template.", turn)


def _crosses_turn(gap: str, profile: TemplateProfile, header: str | None = None) -> bool:
    """Whether `gap` holds the start or end of another turn: a turn-opening token, the user header, the end-of-turn
    marker, the generation prompt."""
    header = (profile.generation_prompt if header is None else header).strip()
    texts = [text for text in (profile.closing, profile.user_header, header) if text]
    return any(marker in gap for marker in (*profile.markers, *texts))
