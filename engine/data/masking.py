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
A template that cuts the reasoning out of every reply, the last one too (DeepSeek-R1's), gets the last reply's
reasoning written back before its text, where the model writes it after the generation prompt's `<think>`.

What each template does (generation prompt, end-of-turn marker, system prompt placement, reasoning) is
probed once per template by engine/data/templates.py.

`{% generation %}` markers (`return_assistant_tokens_mask`) are not used: almost no template a model ships
carries them, and locating replies by rendering works for those that do.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from engine.data.templates import (  # noqa: F401 - MaskingError, template_notes: what callers of masking use
    SENTINELS,
    THINK_CLOSE,
    MaskingError,
    RenderError,
    TemplateProfile,
    fails,
    prepare,
    render,
    template_notes,
    template_profile,
)
from engine.data.toolcalls import fit_tool_calls, has_tool_turns, plain_tool_messages

Messages = list[dict[str, Any]]
Span = tuple[int, int]


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
        if message.get("tool_calls"):
            start = _call_opening(full, floor, start, profile)
        start = _with_opening(full, floor, start, profile,
                              partial(render, tokenizer, prepared[:index], add_generation_prompt=True, tools=fitted))
        end = _with_closing(full, end, profile, turn)
        spans.append((start, end))
        floor = end
    last = max((index for index, message in enumerate(prepared) if message["role"] == "assistant"), default=None)
    if profile.cuts_last_reasoning and last is not None:
        full, spans = _with_last_reasoning(full, spans, prepared[last])
    return full, spans


def _with_last_reasoning(full: str, spans: list[Span], reply: dict[str, Any]) -> tuple[str, list[Span]]:
    """For a template that cuts the reasoning out of every reply, the last one too (DeepSeek-R1's writes only the
    text after `</think>`): the last reply's reasoning written back where the template's text of it begins, as the
    model writes it after the generation prompt, and trained with it. Earlier replies stay as the template writes
    them: the history the model is shown."""
    content = reply.get("content") or ""
    if THINK_CLOSE not in content:
        return full, spans
    start, end = spans[-1]
    after = content.split(THINK_CLOSE)[-1]
    written = next((tail for tail in (after, after.lstrip()) if tail and full.startswith(tail, start)), None)
    if written is None:  # the template changed the text after the reasoning too: leave the reply as it writes it
        return full, spans
    cut = content[: len(content) - len(written)]
    return full[:start] + cut + full[start:], [*spans[:-1], (start, end + len(cut))]


def prompt_text(messages: Messages, tokenizer: Any, tools: list[dict] | None = None) -> str:
    """What chat generates the next reply from: the conversation (ending with a user turn or a tool result) fitted
    to the template as training fits it (tools, calls and results where the template renders them, else the
    fallback's text; the system prompt where the template places it), then the generation prompt. A tool-use
    template gets an empty tools list when none is offered. RenderError where the template raises."""
    profile = template_profile(tokenizer)
    prepared, fitted = _fit(messages, tools, profile, for_generation=True)
    if profile.needs_tools and fitted is None:
        fitted = []
    return render(tokenizer, prepared, add_generation_prompt=True, tools=fitted)


def _fit(messages: Messages, tools: list[dict] | None, profile: TemplateProfile,
         for_generation: bool = False) -> tuple[Messages, list | None]:
    """The messages and tools argument for this template: tool turns as text where it cannot render them, an
    empty tools list only where the template needs one, then reasoning and the system prompt (prepare)."""
    if not profile.renders_tools and (tools or has_tool_turns(messages)):
        messages, tools = plain_tool_messages(messages, tools), None
    else:
        messages = fit_tool_calls(messages, string_arguments=profile.string_arguments,
                                  nine_character_ids=profile.nine_character_ids)
        if not tools and not profile.needs_tools:
            tools = None  # an empty list is no tools (Mistral would write an empty, unclosed tool list)
    return prepare(messages, profile, for_generation=for_generation), tools


def _render_or_explain(tokenizer: Any, prepared: Messages, tools: list | None, fit_first: Any, turns: range) -> str:
    """The render; where the template raises, a MaskingError naming the first turn k (of `turns`: from the first
    user turn on, since shorter starts need not render) such that the row's first k turns, fitted by
    `fit_first(k)`, cannot be rendered."""
    try:
        return render(tokenizer, prepared, tools=tools)
    except RenderError as error:
        failing = next((k for k in turns if fails(tokenizer, *fit_first(k))), None)
        raise MaskingError(f"the chat template fails on this conversation ({error}): change the row or the "
                           "template.", failing) from None


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
        replaced["tool_calls"] = [
            {**call, "function": {"name": sentinel, "arguments": "{}" if isinstance(
                call["function"].get("arguments"), str) else {}}} for call in message["tool_calls"]]
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


def _call_opening(full: str, floor: int, start: int, profile: TemplateProfile) -> int:
    """Where a reply with tool calls begins: the template writes their opening (Mistral's `[TOOL_CALLS] [{"name":
    "`, DeepSeek's `<｜tool▁calls▁begin｜>`) before the first text that varies with a call. It begins after the last
    text the template writes right before a reply (its probed `reply_header`: Mistral's `[/INST]`, DeepSeek's
    `<｜Assistant｜>`), never back over another turn. (The prompt before the reply need not be a prefix of the
    render: Mistral writes the tool list before the last user turn.)"""
    header = profile.reply_header
    for text in dict.fromkeys([header, header.rstrip()] if header else []):  # Mistral v0.3: "[/INST] " before
        found = full.rfind(text, floor, start)                                # text, "[/INST]" before a call
        if found < 0:
            continue
        begins = found + len(text)
        begins += len(full[begins:start]) - len(full[begins:start].lstrip())
        if not _crosses_turn(full[begins:start], profile):
            return begins
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
