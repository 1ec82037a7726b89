"""ChatSession: a base model and the adapters of finished runs, and generation as an iterator of text chunks.

One base model is loaded once; every adapter is loaded into one PeftModel over it, and the base
model's answer comes from the same weights with the adapters switched off (`disable_adapter()`).
A full/freeze run has no adapter: its trained model is loaded beside the base and named like one.

Loading is two steps: `plan_load` (engine/chat/plan.py) decides what to load without touching a model, and
`ChatSession.load` executes that plan. The same session serves the web page's worker (engine/chat/worker.py)
and the terminal chat (engine/chat/cli.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.chat.plan import ChatError, LoadPlan, plan_load
from engine.config import ModelConfig
from engine.data.tokens import end_of_turn_ids, ensure_chat_template
from engine.data.toolcalls import ToolDataError, calls_from_openai, calls_in_reply, link_tool_results, parse_tools
from engine.sampling import SamplingConfig, SamplingError, parse_sampling
from engine.sentences import said

log = logging.getLogger("engine.chat.session")

ROLES = ("system", "user", "assistant", "tool")

@dataclass
class Generation:
    """What one generation produced; filled in while its chunks are being streamed."""

    text: str = ""
    new_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    content: str = ""  # the text beside the tool calls (all of `text` when the reply makes none)
    tool_calls: list[dict] = field(default_factory=list)  # read from the reply where tools were offered

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ChatSession:
    """A base model plus adapters, and generation as an iterator of text chunks."""

    model_name: str | None = None
    model: Any = None  # a PeftModel when adapters are loaded, else the base model
    tokenizer: Any = None  # the first adapter's tokenizer (its chat template), else the base's
    tokenizers: dict[str, Any] = field(default_factory=dict)  # per adapter / full model
    full_models: dict[str, Any] = field(default_factory=dict)  # full/freeze runs, by name
    adapters: list[str] = field(default_factory=list)  # every name a generate request may use
    peft_names: dict[str, str] = field(default_factory=dict)  # user name -> name inside the PeftModel
    bits: int | None = None
    start: str | None = None  # the run merged into the base (the runs' model.adapter), or None

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self, model: str | None = None, adapters: dict[str, str] | None = None, bits: Any = None,
             dtype: str | None = None, roots: list[str] | None = None) -> None:
        """Load the base (and its quantization) and every adapter; replaces whatever was loaded.

        model None takes the base from the runs' config.yaml; bits None is the run's own quantization; roots:
        the folders the request may read from (plan_load). A request refused by the plan keeps what was
        loaded; one that fails while loading has unloaded it.
        """
        from engine.model.loading import ModelError

        plan = plan_load(model, adapters, bits, dtype, roots)
        try:
            self.execute(plan)
        except ModelError as error:
            self.unload()
            raise ChatError(error.sentence) from error

    def execute(self, plan: LoadPlan) -> None:
        """The load step: drop what is loaded, then load the plan's base, adapters and full models."""
        import torch

        from engine.model.loading import grow_embeddings, load_model, load_tokenizer

        self.unload()
        log.info("loading %s%s with %d adapter(s)", plan.model, f" in {plan.bits}-bit" if plan.bits else "",
                 len(plan.sources))
        tokenizers = {s.name: load_tokenizer(ModelConfig(name_or_path=str(s.path))) for s in plan.sources}
        check_one_kind(plan)
        base_tokenizer = load_tokenizer(ModelConfig(name_or_path=plan.model, trust_remote_code=plan.trust_remote_code))
        base = load_model(plan.base_config, bits=plan.bits)
        primary = primary_tokenizer(plan, tokenizers, base_tokenizer)
        # an adapter whose tokenizer outgrew the base (embeddings resized in training) needs the base grown alike
        widest = max([primary, *tokenizers.values()], key=len)
        grow_embeddings(base, widest, {s.name: s.path for s in plan.adapters}, log.warning)
        wrapped, peft_names = attach_adapters(base, plan)
        full_models = {s.name: load_model(ModelConfig(name_or_path=str(s.path), dtype=plan.dtype)).eval()
                       for s in plan.full_models}
        self.model, self.model_name, self.bits, self.start = wrapped.eval(), plan.model, plan.bits, plan.start
        self.tokenizer, self.tokenizers, self.full_models = primary, tokenizers, full_models
        self.adapters, self.peft_names = [s.name for s in plan.sources], peft_names
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def unload(self) -> None:
        import gc

        import torch

        self.model = self.tokenizer = None
        self.model_name, self.bits, self.start = None, None, None
        self.tokenizers, self.full_models, self.adapters, self.peft_names = {}, {}, [], {}
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def status(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "model": self.model_name, "adapters": list(self.adapters),
                "full_models": list(self.full_models), "bits": self.bits, "start": self.start}

    # ------------------------------------------------------------------------------------------ generate

    def prompt_ids(self, messages: list[dict[str, Any]], system: str | None, tokenizer: Any,
                   tools: list[dict] | None = None) -> Any:
        """The prompt's token ids, rendered as training renders a row (engine.data.masking.prompt_text): the system
        prompt where the template places it, the tools, calls and results as the template or the fallback
        writes them."""
        from engine.data.masking import prompt_text
        from engine.data.templates import RenderError

        conversation = check_messages(messages)
        if system:
            conversation = [{"role": "system", "content": system}] + [m for m in conversation if m["role"] != "system"]
        try:
            text = prompt_text(conversation, tokenizer, tools)
        except RenderError as error:
            raise ChatError(said("engine.chat.template", reason=str(error))) from error
        return tokenizer(text, return_tensors="pt", add_special_tokens=False)

    def generate(self, messages: list[dict[str, Any]], adapter: str | None = None, system: str | None = None,
                 reply: Generation | None = None, tools: Any = None, sampling: SamplingConfig | None = None,
                 cancel: threading.Event | None = None, **params: Any) -> Iterator[str]:
        """Stream the assistant's reply to `messages` as text chunks; `reply` gets the totals at the end.

        adapter None answers with the base model (adapters off), a name with that adapter. `tools`: function
        schemas offered to the model (a list or its JSON text, as a dataset's tools column); the reply is then
        read for tool calls (reply.tool_calls). `sampling` is the settings, checked already; else `params` are
        its fields (max_new_tokens=..., temperature=...), checked before anything runs, so a bad value raises
        ChatError and generates nothing. `cancel`, once set, ends the generation at its next token (a client that
        went away).
        """
        self._check_adapter(adapter)
        options = sampling if sampling is not None else check_params(params)
        offered = check_tools(tools)
        tokenizer = self.tokenizers.get(adapter, self.tokenizer) if adapter else self.tokenizer
        inputs = self.prompt_ids(messages, system, tokenizer, offered)
        yield from self._stream(inputs, adapter, tokenizer, options, reply, cancel, read_tool_calls=bool(offered))

    def complete(self, prompt: str, adapter: str | None = None, reply: Generation | None = None,
                 sampling: SamplingConfig | None = None, cancel: threading.Event | None = None) -> Iterator[str]:
        """Stream the continuation of `prompt`, plain text with no chat template (what a completions API asks
        for), with the same model, adapter switching and sampling as `generate`."""
        self._check_adapter(adapter)
        if not isinstance(prompt, str) or not prompt:
            raise ChatError("prompt must be a non-empty string.")
        tokenizer = self.tokenizers.get(adapter, self.tokenizer) if adapter else self.tokenizer
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=True)
        yield from self._stream(inputs, adapter, tokenizer, sampling or SamplingConfig(), reply, cancel)

    def _check_adapter(self, adapter: str | None) -> None:
        if not self.loaded:
            raise ChatError("No model is loaded: send a load request first.")
        if adapter is not None and adapter not in self.adapters:
            known = ", ".join(self.adapters) or "none"
            raise ChatError(f"Adapter '{adapter}' is not loaded (loaded: {known}); use null for the base model.")

    def _stream(self, inputs: Any, adapter: str | None, tokenizer: Any, options: SamplingConfig,
                reply: Generation | None, cancel: threading.Event | None = None,
                read_tool_calls: bool = False) -> Iterator[str]:
        """Generate from the prompt's token ids in a thread and stream the decoded text; `reply` gets the totals."""
        import torch
        from transformers import TextIteratorStreamer

        reply = reply if reply is not None else Generation()
        model = self.full_models.get(adapter, self.model)
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs = {**inputs, **generation_kwargs(tokenizer, options), "streamer": streamer}
        if cancel is not None:
            kwargs["stopping_criteria"] = cancelled_by(cancel)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                with torch.inference_mode(), self.adapter_scope(adapter, model):
                    outcome["ids"] = model.generate(**kwargs)
            except BaseException as error:  # noqa: BLE001 - reported to the caller below
                outcome["error"] = error
                streamer.end()

        started = time.perf_counter()
        thread = threading.Thread(target=run, name="generate", daemon=True)
        thread.start()
        for chunk in streamer:
            if chunk:
                reply.text += chunk
                yield chunk
        thread.join()
        reply.seconds = time.perf_counter() - started
        if "error" in outcome:
            error = outcome["error"]
            raise ChatError(said("engine.chat.generation_failed", kind=error.__class__.__name__,
                                 reason=str(error).splitlines()[0])) from error
        reply.prompt_tokens = int(inputs["input_ids"].shape[-1])
        reply.new_tokens = int(outcome["ids"].shape[-1] - reply.prompt_tokens)
        reply.content = reply.text
        if read_tool_calls:
            new_ids = outcome["ids"][0, reply.prompt_tokens:].tolist()
            read_calls(tokenizer, new_ids, kwargs["eos_token_id"], reply)

    def adapter_scope(self, adapter: str | None, model: Any) -> Any:
        """The context in which `model` answers as `adapter` (None: the base, adapters off); the evaluation
        (engine/eval) switches adapters through it as the chat does."""
        from contextlib import nullcontext

        if model is not self.model or not hasattr(self.model, "disable_adapter"):
            return nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        self.model.set_adapter(self.peft_names[adapter])
        return nullcontext()


# ---------------------------------------------------------------------------------------------- load steps


def check_one_kind(plan: LoadPlan) -> None:
    """peft stacks adapters of one kind only over one base."""
    from peft import PeftConfig

    kinds = {PeftConfig.from_pretrained(str(s.path)).peft_type for s in plan.adapters}
    if len(kinds) > 1:
        names = ", ".join(sorted(str(k.value) for k in kinds))
        raise ChatError(said("engine.chat.different_kinds", kinds=names))


def primary_tokenizer(plan: LoadPlan, tokenizers: dict[str, Any], base_tokenizer: Any) -> Any:
    """The tokenizer the base answers with: the first adapter's (its chat template), else the first source's or
    the base's own, with ChatML where it has no template."""
    if plan.adapters:
        return tokenizers[plan.adapters[0].name]
    primary = tokenizers[plan.sources[0].name] if plan.sources else base_tokenizer
    ensure_chat_template(primary)
    return primary


def attach_adapters(base: Any, plan: LoadPlan) -> tuple[Any, dict[str, str]]:
    """Every adapter of the plan in one PeftModel over `base` (the base itself when there is none), and the name
    each has inside it."""
    from peft import PeftModel

    wrapped = base
    # peft names must not be substrings of its weight prefixes ("lora_", "prefix_tuning_" ...): a user's
    # name like "lora" or "prefix" could make it reinitialise the weights, so adapters get neutral names
    peft_names = {source.name: f"adapter{index}" for index, source in enumerate(plan.adapters)}
    for index, source in enumerate(plan.adapters):
        try:
            if index == 0:
                wrapped = PeftModel.from_pretrained(base, str(source.path), adapter_name=peft_names[source.name])
            else:
                wrapped.load_adapter(str(source.path), adapter_name=peft_names[source.name])
        except (OSError, ValueError, RuntimeError) as error:
            raise ChatError(said("engine.chat.does_not_fit", name=source.name, path=str(source.path), model=plan.model,
                                 reason=str(error).splitlines()[0])) from error
    return wrapped, peft_names


# ---------------------------------------------------------------------------------------------- requests


def generation_kwargs(tokenizer: Any, options: SamplingConfig) -> dict[str, Any]:
    """`model.generate` arguments for the settings: greedy at temperature 0, else sampling."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "do_sample": not options.greedy,
        "repetition_penalty": options.repetition_penalty,
        "eos_token_id": end_of_turn_ids(tokenizer),
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    if not options.greedy:
        kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
    else:  # greedy: clear the sampling defaults a model's generation_config may carry
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


def cancelled_by(cancel: threading.Event) -> Any:
    """Stopping criteria that end a generation at the next token once `cancel` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:  # noqa: ARG002 - transformers' call
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancelled()])


def read_calls(tokenizer: Any, new_ids: list[int], stop_ids: list[int], reply: Generation) -> None:
    """reply.content and reply.tool_calls from the generated ids, decoded with the special tokens a call syntax
    may be written in ([TOOL_CALLS], <tool_call> where it is one token) and without the end-of-turn marker."""
    while new_ids and new_ids[-1] in stop_ids:
        new_ids = new_ids[:-1]
    content, calls = calls_in_reply(tokenizer.decode(new_ids, skip_special_tokens=False))
    if calls:
        reply.content, reply.tool_calls = content, calls


def check_tools(tools: Any) -> list[dict] | None:
    """The tools a request offers, as templates read them; None (or an empty list): none."""
    if tools is None:
        return None
    try:
        return parse_tools(tools) or None
    except ToolDataError as error:
        raise ChatError(f"The tools offered cannot be used: {error.field_name} {error.problem}.") from None


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """The conversation as templates read it: {role, content} turns, an assistant's tool_calls, and tool results
    linked to the calls they answer, in order (engine/data/toolcalls.py)."""
    if not isinstance(messages, list) or not messages:
        raise ChatError("messages must be a non-empty list of {role, content} objects.")
    out = [check_message(message, number) for number, message in enumerate(messages, 1)]
    if out[-1]["role"] not in ("user", "tool"):
        raise ChatError("The last message must be the user's or a tool result: it is what the model answers.")
    return link_tool_results(out)


def check_message(message: Any, number: int) -> dict[str, Any]:
    if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(
            message.get("content"), str):
        raise ChatError(f"Message {number} must be an object with role (system, user, assistant or tool) and "
                        "content (a string).")
    out: dict[str, Any] = {"role": message["role"], "content": message["content"]}
    if message["role"] == "assistant" and message.get("tool_calls"):
        try:
            out["tool_calls"] = calls_from_openai(message["tool_calls"], "tool_calls")
        except ToolDataError as error:
            raise ChatError(f"Message {number}'s {error.field_name} {error.problem}.") from None
    if message["role"] == "tool":
        out.update({key: str(message[key]) for key in ("tool_call_id", "name") if message.get(key)})
    return out


def check_params(params: dict[str, Any]) -> SamplingConfig:
    """The sampling settings of a request (engine.sampling); ChatError names each refused field."""
    try:
        return parse_sampling(params)
    except SamplingError as error:
        raise ChatError(error.sentence) from None
