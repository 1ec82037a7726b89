"""Chat with a base model and the adapters of finished runs: a long-lived worker and a terminal REPL.

`python -m engine chat --worker` is what the web UI starts: JSON lines in on stdin, JSON lines out on
stdout (logs go to stderr), so the web server never imports torch and ending the worker frees the
memory. Requests carry an "id" that every answer repeats:

    {"id":1,"op":"load","model":null,"adapters":{"ft":"RUN_DIR"},"bits":null}
        -> {"id":1,"event":"loaded","model":...,"adapters":["ft"],"device":"cpu"}
    {"id":2,"op":"generate","messages":[{"role":"user","content":"Hi"}],"adapter":"ft","system":null,
     "max_new_tokens":128,"temperature":0.0,"top_p":1.0,"top_k":50,"repetition_penalty":1.0,"seed":0}
        -> {"id":2,"event":"chunk","text":"..."} ... {"id":2,"event":"done","text":FULL,"new_tokens":n,"tokens_per_s":x}
    {"id":3,"op":"unload"} -> unloaded     {"id":4,"op":"status"} -> status     {"id":5,"op":"shutdown"} -> bye

A bad request gets {"id":..,"event":"error","message":"one sentence"} and the worker keeps running.

`python launch.py chat --model M --adapter RUN` is a terminal chat on the same ChatSession.

One base model is loaded once; every adapter is loaded into one PeftModel over it, and the base
model's answer comes from the same weights with the adapters switched off (`disable_adapter()`).
A full/freeze run has no adapter: its trained model is loaded beside the base and named like one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from engine import rundir
from engine.config import ModelConfig, RunConfig

log = logging.getLogger("engine.chat")

ROLES = ("system", "user", "assistant")
MAX_NEW_TOKENS = 8192
# Generation parameters: name -> (type, default, check, what a valid value is).
PARAMS: dict[str, tuple[type | tuple[type, ...], Any, Any, str]] = {
    "max_new_tokens": (int, 256, lambda v: 1 <= v <= MAX_NEW_TOKENS, f"an integer from 1 to {MAX_NEW_TOKENS}"),
    "temperature": ((int, float), 0.0, lambda v: 0 <= v <= 10, "a number from 0 (greedy) to 10"),
    "top_p": ((int, float), 1.0, lambda v: 0 < v <= 1, "a number above 0 and at most 1"),
    "top_k": (int, 50, lambda v: v >= 0, "an integer of 0 (off) or more"),
    "repetition_penalty": ((int, float), 1.0, lambda v: 0 < v <= 10, "a number above 0 and at most 10"),
    "seed": ((int, type(None)), 0, lambda v: True, "an integer or null"),
}


class ChatError(ValueError):
    """A request that cannot be served; the message is one sentence for the user."""


# ---------------------------------------------------------------------------------------------- sources


@dataclass
class Source:
    """One thing to chat with besides the base: a PEFT adapter folder, or a full/freeze run's model."""

    name: str
    path: Path  # the adapter folder or the full model folder
    kind: str  # "adapter" or "model"
    run: RunConfig | None = None  # the run's config when `path` came from a run folder


def read_run_config(run_dir: Path) -> RunConfig | None:
    """The run's resolved config without re-validating paths (its dataset may have moved since)."""
    path = Path(run_dir) / rundir.CONFIG
    if not path.is_file():
        return None
    return RunConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def resolve_source(name: str, location: str | os.PathLike) -> Source:
    """A run folder (adapter/ or model/ inside) or any PEFT adapter folder -> Source."""
    path = Path(location).expanduser()
    if not path.exists():
        raise ChatError(f"Adapter '{name}': {path} does not exist.")
    if (path / "adapter_config.json").is_file():
        run = read_run_config(path.parent) if path.name == rundir.ADAPTER else None
        return Source(name, path, "adapter", run)
    run_dir = rundir.RunDir(path)
    run = read_run_config(path)
    if (run_dir.adapter / "adapter_config.json").is_file():
        return Source(name, run_dir.adapter, "adapter", run)
    if (run_dir.model / "config.json").is_file():
        return Source(name, run_dir.model, "model", run)
    raise ChatError(f"Adapter '{name}': {path} is neither a finished run folder nor a PEFT adapter folder.")


def adapter_base(source: Source) -> str | None:
    """The base model an adapter was trained on: the run's config, else the adapter's own config."""
    if source.run is not None:
        return source.run.model.name_or_path
    if source.kind == "adapter":
        config = json.loads((source.path / "adapter_config.json").read_text(encoding="utf-8"))
        return config.get("base_model_name_or_path")
    return None


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: eos, plus the special token the chat template puts after a
    reply (<|im_end|> for ChatML, <|eot_id|> for Llama 3, <end_of_turn> for Gemma ...)."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    marker = "\u2603MARKER\u2603"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
        )
    except jinja2.TemplateError:  # a template that cannot render two turns has no end-of-turn to find
        return ids
    after = text.split(marker, 1)[-1].strip() if marker in text else ""
    if after:
        first = tokenizer(after, add_special_tokens=False)["input_ids"][:1]
        special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        if first and first[0] in special and first[0] not in ids:
            ids.append(first[0])
    return ids


def parse_bits(value: Any) -> int | None | str:
    """Request bits: None/"run" = the run's own quantization, 0/"none"/false = full precision, 4 or 8."""
    if value is None or value == "run":
        return "run"
    if value in (0, False, "none", "0"):
        return None
    if value in (4, 8, "4", "8"):
        return int(value)
    raise ChatError(f"bits is {value!r}: use null (the run's own), 0 (full precision), 4 or 8.")


# ---------------------------------------------------------------------------------------------- session


@dataclass
class Reply:
    """What one generation produced; filled in while its chunks are being streamed."""

    text: str = ""
    new_tokens: int = 0
    seconds: float = 0.0

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

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self, model: str | None = None, adapters: dict[str, str] | None = None, bits: Any = None,
             dtype: str | None = None) -> None:
        """Load the base (and its quantization) and every adapter; replaces whatever was loaded.

        model None takes the base from the runs' config.yaml; bits None is the run's own quantization.
        """
        from engine.modeling import ModelError

        try:
            self._load(model, adapters, bits, dtype)
        except ModelError as error:
            self.unload()
            raise ChatError(str(error)) from error

    def _load(self, model: str | None, adapters: dict[str, str] | None, bits: Any, dtype: str | None) -> None:
        import torch
        from peft import PeftConfig, PeftModel

        from engine.data import ensure_chat_template
        from engine.modeling import fit_embeddings, load_model, load_tokenizer

        adapters = dict(adapters or {})
        for name in adapters:
            if not isinstance(name, str) or not name:
                raise ChatError("Adapter names must be non-empty strings.")
        sources = [resolve_source(name, location) for name, location in adapters.items()]
        model = model or self._base_from(sources)
        bits_choice = parse_bits(bits)
        runs = [s.run for s in sources if s.run is not None and s.kind == "adapter"]
        if bits_choice == "run":
            bits_choice = runs[0].method.effective_bits if runs else None
        run_dtype = dtype or (runs[0].model.dtype if runs else "auto")
        trust = any(s.run.model.trust_remote_code for s in sources if s.run is not None)
        model_cfg = ModelConfig(name_or_path=model, dtype=run_dtype, trust_remote_code=trust)

        self.unload()
        log.info("loading %s%s with %d adapter(s)", model, f" in {bits_choice}-bit" if bits_choice else "",
                 len(sources))
        tokenizers = {}
        for source in sources:
            tokenizers[source.name] = load_tokenizer(ModelConfig(name_or_path=str(source.path)))
        adapter_sources = [s for s in sources if s.kind == "adapter"]
        kinds = {PeftConfig.from_pretrained(str(s.path)).peft_type for s in adapter_sources}
        if len(kinds) > 1:
            names = ", ".join(sorted(str(k.value) for k in kinds))
            raise ChatError(f"These adapters are of different kinds ({names}) and peft cannot stack them over "
                            "one base: load adapters of one kind at a time.")
        base_tokenizer = load_tokenizer(ModelConfig(name_or_path=model, trust_remote_code=trust))
        base = load_model(model_cfg, bits=bits_choice)
        primary = tokenizers[adapter_sources[0].name] if adapter_sources else None
        if primary is None:
            primary = tokenizers[sources[0].name] if sources else base_tokenizer
            ensure_chat_template(primary)
        # an adapter whose tokenizer outgrew the base (embeddings resized in training) needs the base grown to
        # the same size; peft saved the resized embedding rows with the adapter and loads them over the grown matrix
        widest = max([primary, *tokenizers.values()], key=len)
        from engine.export import adapter_carries_embeddings

        if len(widest) > base.get_input_embeddings().weight.shape[0]:
            torch.manual_seed(0)  # rows no adapter carries are drawn at random: the same as export draws
            fit_embeddings(base, widest)
            for source in adapter_sources:
                if not adapter_carries_embeddings(source.path):
                    log.warning("adapter %s does not carry the embedding rows of the tokens its chat template "
                                "added; they are re-initialised", source.name)
        wrapped = base
        # peft names must not be substrings of its weight prefixes ("lora_", "prefix_tuning_" ...): a user's
        # name like "lora" or "prefix" could make it reinitialise the weights, so adapters get neutral names
        peft_names = {source.name: f"adapter{index}" for index, source in enumerate(adapter_sources)}
        for index, source in enumerate(adapter_sources):
            try:
                if index == 0:
                    wrapped = PeftModel.from_pretrained(base, str(source.path), adapter_name=peft_names[source.name])
                else:
                    wrapped.load_adapter(str(source.path), adapter_name=peft_names[source.name])
            except (OSError, ValueError, RuntimeError) as error:
                raise ChatError(f"Adapter '{source.name}' from {source.path} does not fit {model}: "
                                f"{str(error).splitlines()[0]}") from error
        for source in sources:
            if source.kind == "model":
                self.full_models[source.name] = load_model(ModelConfig(name_or_path=str(source.path),
                                                                       dtype=run_dtype))
        wrapped.eval()
        for full in self.full_models.values():
            full.eval()
        self.model, self.model_name, self.bits = wrapped, model, bits_choice
        self.tokenizer, self.tokenizers = primary, tokenizers
        self.adapters, self.peft_names = [s.name for s in sources], peft_names
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _base_from(self, sources: list[Source]) -> str:
        bases = {adapter_base(s) for s in sources if adapter_base(s)}
        if not bases:
            raise ChatError("No model given and no adapter names its base model: set \"model\".")
        if len(bases) > 1:
            raise ChatError(f"The adapters were trained on different base models ({', '.join(sorted(bases))}): "
                            "load adapters of one base at a time.")
        return bases.pop()

    def unload(self) -> None:
        import gc

        import torch

        self.model = self.tokenizer = None
        self.model_name, self.bits = None, None
        self.tokenizers, self.full_models, self.adapters, self.peft_names = {}, {}, [], {}
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def status(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "model": self.model_name, "adapters": list(self.adapters), "bits": self.bits}

    # ------------------------------------------------------------------------------------------ generate

    def prompt_ids(self, messages: list[dict[str, str]], system: str | None, tokenizer: Any) -> Any:
        from engine.masking import prepare, template_profile

        conversation = check_messages(messages)
        if system:
            conversation = [{"role": "system", "content": system}] + [m for m in conversation if m["role"] != "system"]
        try:
            # the system prompt where the template places it (folded into the user turn for Gemma-2), as in training
            conversation = prepare(conversation, template_profile(tokenizer), for_generation=True)
            text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        except Exception as error:  # noqa: BLE001 - jinja raises its own types, all mean "cannot render"
            raise ChatError(f"The chat template cannot render this conversation: {error}") from error
        return tokenizer(text, return_tensors="pt", add_special_tokens=False)

    def generate(self, messages: list[dict[str, str]], adapter: str | None = None, system: str | None = None,
                 reply: Reply | None = None, **params: Any) -> Iterator[str]:
        """Stream the assistant's reply to `messages` as text chunks; `reply` gets the totals at the end.

        adapter None answers with the base model (adapters off), a name with that adapter. Parameters
        are checked before anything runs, so a bad request raises ChatError and generates nothing.
        """
        import torch
        from transformers import TextIteratorStreamer

        if not self.loaded:
            raise ChatError("No model is loaded: send a load request first.")
        if adapter is not None and adapter not in self.adapters:
            known = ", ".join(self.adapters) or "none"
            raise ChatError(f"Adapter '{adapter}' is not loaded (loaded: {known}); use null for the base model.")
        options = check_params(params)
        reply = reply if reply is not None else Reply()
        tokenizer = self.tokenizers.get(adapter, self.tokenizer) if adapter else self.tokenizer
        model = self.full_models.get(adapter, self.model)
        inputs = self.prompt_ids(messages, system, tokenizer)
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        greedy = options["temperature"] == 0
        kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": options["max_new_tokens"],
            "do_sample": not greedy,
            "repetition_penalty": float(options["repetition_penalty"]),
            "eos_token_id": end_of_turn_ids(tokenizer),
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        }
        if not greedy:
            kwargs.update(temperature=float(options["temperature"]), top_p=float(options["top_p"]),
                          top_k=int(options["top_k"]))
        else:  # greedy: clear the sampling defaults a model's generation_config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs["streamer"] = streamer
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                if options["seed"] is not None:
                    torch.manual_seed(options["seed"])
                with torch.inference_mode(), self._adapter_scope(adapter, model):
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
            raise ChatError(f"Generation failed: {error.__class__.__name__}: {str(error).splitlines()[0]}") from error
        reply.new_tokens = int(outcome["ids"].shape[-1] - inputs["input_ids"].shape[-1])

    def _adapter_scope(self, adapter: str | None, model: Any) -> Any:
        from contextlib import nullcontext

        if model is not self.model or not hasattr(self.model, "disable_adapter"):
            return nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        self.model.set_adapter(self.peft_names[adapter])
        return nullcontext()


def check_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise ChatError("messages must be a non-empty list of {role, content} objects.")
    out = []
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(
                message.get("content"), str):
            raise ChatError(f"Message {number} must be an object with role (system, user or assistant) and "
                            "content (a string).")
        out.append({"role": message["role"], "content": message["content"]})
    if out[-1]["role"] != "user":
        raise ChatError("The last message must be the user's: it is what the model answers.")
    return out


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ChatError(f"Unknown generation parameter(s): {', '.join(unknown)}.")
    options = {}
    for name, (kind, default, valid, what) in PARAMS.items():
        value = params.get(name)
        if value is None and name != "seed":
            value = default
        if isinstance(value, bool) or not isinstance(value, kind) or not valid(value):
            raise ChatError(f"{name} is {value!r}: it must be {what}.")
        options[name] = value
    return options


# ---------------------------------------------------------------------------------------------- worker


class Worker:
    """The JSON-lines protocol over a ChatSession; `out` is the only stream answers are written to."""

    def __init__(self, out: Any, session: ChatSession | None = None):
        self.out = out
        self.session = session or ChatSession()

    def send(self, **event: Any) -> None:
        self.out.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.out.flush()

    def handle_line(self, line: str) -> bool:
        """Answer one request line; False when the worker should exit."""
        request_id = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ChatError("A request must be a JSON object with an op.")
            request_id = request.get("id")
            op = request.get("op")
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise ChatError(f"Unknown op {op!r}: use load, generate, unload, status or shutdown.")
            return handler(request_id, request) is not False
        except json.JSONDecodeError:
            self.send(id=None, event="error", message="The request is not valid JSON: send one object per line.")
        except ChatError as error:
            self.send(id=request_id, event="error", message=str(error))
        except Exception as error:  # noqa: BLE001 - the worker must outlive any single request
            log.exception("request failed")
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            self.send(id=request_id, event="error", message=f"{error.__class__.__name__}: {text}".rstrip(": "))
        return True

    def op_load(self, request_id: Any, request: dict) -> None:
        adapters = request.get("adapters") or {}
        if not isinstance(adapters, dict):
            raise ChatError("adapters must be an object of name -> run or adapter folder.")
        model = request.get("model")
        if model is not None and not isinstance(model, str):
            raise ChatError("model must be a hub id or a local folder, or null to take it from the runs.")
        if model is None and not adapters:
            raise ChatError("Nothing to load: give a model, or adapters whose runs name their base.")
        from engine.modeling import device

        self.session.load(model, adapters, request.get("bits"))
        self.send(id=request_id, event="loaded", model=self.session.model_name, adapters=self.session.adapters,
                  device=device())

    def op_generate(self, request_id: Any, request: dict) -> None:
        params = {k: request[k] for k in PARAMS if k in request}
        unknown = set(request) - set(PARAMS) - {"id", "op", "messages", "adapter", "system"}
        if unknown:
            raise ChatError(f"Unknown field(s) in generate: {', '.join(sorted(unknown))}.")
        system = request.get("system")
        if system is not None and not isinstance(system, str):
            raise ChatError("system must be a string or null.")
        reply = Reply()
        for chunk in self.session.generate(request.get("messages"), request.get("adapter"), system, reply, **params):
            self.send(id=request_id, event="chunk", text=chunk)
        self.send(id=request_id, event="done", text=reply.text, new_tokens=reply.new_tokens,
                  tokens_per_s=round(reply.tokens_per_s, 2))

    def op_unload(self, request_id: Any, request: dict) -> None:
        self.session.unload()
        self.send(id=request_id, event="unloaded")

    def op_status(self, request_id: Any, request: dict) -> None:
        self.send(id=request_id, event="status", **self.session.status())

    def op_shutdown(self, request_id: Any, request: dict) -> bool:
        self.send(id=request_id, event="bye")
        return False

    def serve(self, lines: Any) -> int:
        self.send(event="ready")
        for line in lines:
            if line.strip() and not self.handle_line(line):
                break
        return 0


def protocol_stdout() -> Any:
    """A private copy of stdout for the protocol; fd 1 and sys.stdout then point at stderr, so a stray
    print from any library can never corrupt the JSON lines."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def run_worker() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    out = protocol_stdout()
    stdin = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the worker
    return Worker(out).serve(stdin)


# ---------------------------------------------------------------------------------------------- terminal


def parse_adapter_args(values: list[str]) -> dict[str, str]:
    """--adapter RUN or --adapter NAME=DIR -> {name: location}; a bare path is named after its folder."""
    adapters: dict[str, str] = {}
    for value in values:
        name, sep, location = value.partition("=")
        if not sep or Path(value).exists():
            location = value
            path = Path(value).resolve()
            name = path.parent.name if path.name == rundir.ADAPTER else path.name
        adapters[name] = location
    return adapters


def repl(session: ChatSession, system: str | None, params: dict[str, Any], lines: Any = None) -> int:
    """Terminal chat: type a message, see the streamed reply; /base, /adapter NAME, /reset, /quit."""
    adapter = session.adapters[0] if session.adapters else None
    history: list[dict[str, str]] = []
    print(f"chatting with {session.model_name}" + (f" + {adapter}" if adapter else "") +
          ". Commands: /base (toggle the adapter), /adapter NAME, /reset, /quit", file=sys.stderr)
    while True:
        try:
            label = adapter or "base"
            text = input(f"[{label}] you> ") if lines is None else next(lines)
        except (EOFError, StopIteration, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        text = text.strip()
        if not text:
            continue
        if text == "/quit":
            return 0
        if text == "/reset":
            history = []
            print("(conversation cleared)", file=sys.stderr)
            continue
        if text == "/base":
            adapter = None if adapter else (session.adapters[0] if session.adapters else None)
            print(f"(now answering with {adapter or 'the base model'})", file=sys.stderr)
            continue
        if text.startswith("/adapter"):
            name = text.partition(" ")[2].strip()
            if name not in session.adapters:
                print(f"(unknown adapter; loaded: {', '.join(session.adapters) or 'none'})", file=sys.stderr)
            else:
                adapter = name
            continue
        history.append({"role": "user", "content": text})
        reply = Reply()
        try:
            for chunk in session.generate(history, adapter, system, reply, **params):
                print(chunk, end="", flush=True)
        except ChatError as error:
            history.pop()
            print(f"\nerror: {error}", file=sys.stderr)
            continue
        print(flush=True)
        print(f"({reply.new_tokens} tokens, {reply.tokens_per_s:.1f} tokens/s)", file=sys.stderr)
        history.append({"role": "assistant", "content": reply.text})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py chat", description="Chat with a model and adapters.")
    parser.add_argument("--worker", action="store_true", help="JSON lines on stdin/stdout (what the web UI runs)")
    parser.add_argument("--model", help="base model: hub id or folder (default: the base of the first run)")
    parser.add_argument("--adapter", action="append", default=[], metavar="RUN_OR_DIR",
                        help="a run folder or PEFT adapter folder, optionally NAME=DIR; repeatable")
    parser.add_argument("--bits", default=None, help="4, 8 or 0 (full precision); default: what the run used")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="longest reply in tokens (default 256)")
    parser.add_argument("--temperature", type=float, default=0.7, help="0 is greedy (default 0.7)")
    parser.add_argument("--top-p", type=float, default=0.9,
                        help="sample from the smallest set of tokens whose probabilities add up to this (default 0.9)")
    parser.add_argument("--top-k", type=int, default=50, help="sample from the k likeliest tokens; 0 is off (default 50)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0,
                        help="above 1 makes repeating earlier tokens less likely (default 1.0: off)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for sampling (default: a new one each reply)")
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker()
    from engine.console import send_library_output_to_log

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    send_library_output_to_log()
    for library in ("py.warnings", "transformers", "peft", "bitsandbytes"):  # the terminal shows the chat only
        logging.getLogger(library).setLevel(logging.ERROR)
    if not args.model and not args.adapter:
        parser.error("give --model, or --adapter RUN whose config names the base model")
    session = ChatSession()
    params = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p,
              "top_k": args.top_k, "repetition_penalty": args.repetition_penalty, "seed": args.seed}
    try:
        check_params(params)
        print("loading ...", file=sys.stderr)
        session.load(args.model, parse_adapter_args(args.adapter), args.bits)
    except ChatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return repl(session, args.system, params)

