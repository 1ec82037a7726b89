"""Sentences for a person that keep their message key: the engine writes English, the page can say it in zh.

The engine's sentences (a refused config, a dataset it cannot read, the pre-flight memory refusal, why a run
died) are English: the command line, the logs and status.json's `error` read them. A sentence made with
`said(KEY, **values)` is that English text (a `Sentence`, a str) remembering its key and values: a UserError
made from it carries them (`error.sentence`), a failed status writes them beside the text (`error_key`,
`error_values`, see `keyed_fields`), an engine command prints them on the line before its sentence (`tell`,
`heard`), and the page words the key in the visitor's language (`worded`, with the locale's table).

ENGLISH holds the English wording of every key (the later areas' come from engine/sentences_more.py); the web
page's English table takes them from here (webui.i18n) and assets/locales/zh.json holds the Chinese of each
(tests/unit/test_engine_sentences.py keeps both complete). A value may itself be a Sentence (a part of the
sentence with its own key): it is worded in the same language. Adding a sentence: one line here (or in
sentences_more.py), one in zh.json, and `said(KEY, ...)` where it is made.

Plain Python (no torch): the web process imports it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from engine.sentences_log import ENGLISH_LOG
from engine.sentences_more import ENGLISH_MORE

ENGLISH: dict[str, str] = {
    # dataset files (engine/data/readers.py, formats.py, sources.py, pipeline.py)
    "engine.data.bad_extension": "{name} has the unsupported extension '{suffix}': save it as {extensions}.",
    "engine.data.missing": "{path} does not exist: check data.path.",
    "engine.data.empty": "{name} is empty: add at least one row.",
    "engine.data.no_rows": "{name} has no rows: add at least one row.",
    "engine.data.not_utf8": "{name} is not UTF-8 text (byte 0x{byte} on line {line}): re-save the file with UTF-8 "
                            "encoding.",
    "engine.data.not_json": "{name} is not valid JSON ({reason} at line {line}, column {column}): {hint}.",
    "engine.data.hint_jsonl": "it looks like JSON Lines, so rename it to .jsonl",
    "engine.data.hint_syntax": "fix the syntax, or save one object per line as .jsonl",
    "engine.data.not_a_list": "{name} holds a JSON {kind}, not a list of rows: put the rows in a list or under a "
                              "'data' key.",
    "engine.data.bad_jsonl_line": "{name} line {number} is not valid JSON ({reason} at column {column}): write "
                                  "exactly one JSON object per line.",
    "engine.data.bad_csv": "{name} is not valid CSV ({reason}): check its quoting.",
    "engine.data.extra_csv_fields": "{name} row {number} has more fields than the header: quote fields that "
                                    "contain commas.",
    "engine.data.not_an_object": "{name} row {number} is a {kind}, not an object: write each row as "
                                 "{{\"column\": value}}.",
    "engine.data.bad_parquet": "{name} is not a readable Parquet file ({reason}): re-export it as Parquet.",
    "engine.data.not_standard_column": "{name}: data.columns names '{standard}', which is not a standard column: "
                                       "use one of {columns}.",
    "engine.data.no_such_column": "{name} has no column '{source}' to use as '{standard}' (found: {found}): fix "
                                  "data.columns.",
    "engine.data.no_format": "{name} row 1 has the columns {columns}, which match no format (expected {expected}): "
                             "rename the columns or map them with data.columns.",
    "engine.data.mixed_formats": "{name} row {number} looks like {kind} while row 1 was {first}: use one format "
                                 "for all rows.",
    "engine.data.missing_field": "{name} row {number} has no '{field}' field, which the {format} format needs "
                                 "(found: {found}): add it or map a column to it with data.columns.",
    "engine.data.not_found": "{name} is neither a file or folder here nor a dataset on the Hugging Face hub "
                             "({reason}): check data.path (relative to the config file).",
    "engine.data.no_split": "{name} has no split '{split}' (it has {splits}): set data.split (or the item's split).",
    "engine.data.empty_split": "{name} has no rows in its split '{split}': choose another data.split.",
    "engine.data.all_dropped": "{name} has no row left with a token to train on after cutoff_len={cutoff}: raise "
                               "train.cutoff_len or set data.overlength to truncate.",
    "engine.data.no_reply_left": "{name} has no row left with a token to train on after cutoff_len={cutoff}: cut "
                                 "at {cutoff} tokens, every row ends before its reply begins: raise train.cutoff_len.",
    "engine.data.too_few_for_val": "{name} has only {rows} usable rows, too few to hold out val_size={val_size}: "
                                   "lower data.val_size or add rows.",
    "engine.data.no_pair": "{name} row 1 has the columns {found}, which hold no preference pair: a preference stage "
                           "needs prompt, chosen and rejected in every row.",
    "engine.data.no_kto_row": "{name} row 1 has the columns {found}: KTO needs prompt, completion and label (true for "
                              "a good reply, false for a bad one) in every row, or preference pairs.",
    "engine.data.row": "{name} row {number}: field '{field}' {problem}.",
    "engine.row.not_text": "is a {kind}: write it as text",
    "engine.row.empty": "is empty: write {what}, or remove the row",
    "engine.row.instruction": "the instruction the model should follow",
    "engine.row.answer": "the answer the model should learn",
    "engine.row.prompt": "the prompt",
    "engine.row.text": "the text to train on",
    "engine.row.no_turns": "must be a non-empty list of turns",
    "engine.row.bad_role": "is {role}: use user/human, assistant/gpt, system, function_call, observation or tool",
    "engine.row.empty_reply": "is an empty assistant turn: write the reply, or remove the turn",
    "engine.row.late_system": "has a system turn after the first turn: move it to the start",
    "engine.row.user_first": "must start with a user turn (after an optional system turn)",
    "engine.row.ends_with_user": "ends with a user turn: end each conversation with the assistant's reply",
    # a file's shape under a stage (engine/config_stage.py shape_problem)
    "engine.stage.pairs_under_sft": "{name} holds {held}, which supervised fine-tuning and pretraining do not "
                                    "read: set train.stage to {stages}, or choose a file of SFT rows.",
    "engine.stage.held_kto": "replies marked good or bad (prompt, completion, label)",
    "engine.stage.held_pairs": "preference pairs (prompt, chosen, rejected)",
    "engine.stage.pair_stages": "dpo, orpo, simpo or kto",
    "engine.stage.sft_under_preference": "{name} holds {shape} rows (SFT's), not preference pairs: a preference "
                                         "stage needs prompt, chosen and rejected in every row (kto: or prompt, "
                                         "completion and label); set train.stage to sft, or choose a pairs file.",
    "engine.stage.kto_under_pairs": "{name} holds rows of prompt, completion and label (KTO's unpaired replies): "
                                    "set train.stage to kto, or write pairs of prompt, chosen and rejected.",
    # the config (engine/config_read.py)
    "engine.config.issue": "{source}: {issue}",
    "engine.config.unknown_key": "Unknown key '{key}'{where}: remove it or check its spelling.",
    "engine.config.missing_key": "Missing key '{key}'{where}: it is required.",
    "engine.config.in": " in {where}",
    "engine.config.no_file": "config file {path} does not exist.",
    "engine.config.not_yaml": "the file is not valid YAML ({reason}).",
    "engine.config.other_job": "the file is the config of {job} ({keys}), not of a training run: give it to python "
                               "launch.py {command}; the command given it reads a run's config (model, method, data).",
    "engine.config.job_compare": "a comparison",
    "engine.config.job_eval": "an evaluation",
    "engine.config.bits_full": "method.bits cannot be used with method '{method}': quantized weights cannot be "
                               "trained.",
    "engine.config.bits_prompt": "method.bits is only supported for LoRA-family methods, not '{method}'.",
    "engine.config.no_targets": "method.target_modules is empty: list module names or use 'all-linear'.",
    "engine.config.eval_without_val": "train.eval_steps needs a validation set: set data.val_size above 0.",
    "engine.config.nothing_to_resume": "train.resume is set but output_dir {output_dir} does not exist: nothing to "
                                       "resume.",
    # the model (engine/model/loading.py)
    "engine.model.custom_code": "Model {name} ships its own code (auto_map in its config.json): set "
                                "model.trust_remote_code to true (Trust remote code on the Train tab) if you trust "
                                "its author, or choose a model that transformers supports.",
    "engine.model.folder_missing": "Model folder {name} does not exist: check model.name_or_path.",
    "engine.model.not_a_model": "Model folder {name} is not a Hugging Face model (config.json, weights or "
                                "tokenizer missing): {details}",
    "engine.model.no_safetensors": "Model '{name}' has no safetensors weights: PEFT Workbench loads only "
                                   "safetensors, since loading a pickle can run code. Choose a revision or copy of "
                                   "it that ships .safetensors.",
    "engine.model.not_found": "Model '{name}' could not be loaded: it is not a local folder, and the Hugging Face "
                              "Hub does not have it or cannot be reached (check the id and your network, or "
                              "download it first). Details: {details}",
    # the pre-flight memory check (engine/train/preflight.py)
    "engine.memory.cannot_fit": "This configuration cannot fit: one step needs about {needed} GiB ({part} of the "
                                "largest batch{packed} alone takes {size} GiB) and {free} GiB of {where} is free: "
                                "{levers}{advice}.",
    "engine.memory.packed": " packed into rows of {tokens} tokens in all",
    "engine.memory.virtual_tokens": "This configuration cannot fit: its {count} virtual tokens alone need at least "
                                    "{needed} GiB and {free} GiB of {where} is free: lower method.num_virtual_tokens "
                                    "(now {now}).",
    "engine.memory.gpu": "GPU memory",
    "engine.memory.ram": "RAM",
    "engine.memory.ram_limit": "RAM (the {label} limit of {folder})",
    "engine.memory.ram_root_limit": "RAM (the {label} limit of the root)",
    "engine.memory.address_space": "address space (RLIMIT_AS, ulimit -v)",
    "engine.memory.part.weights": "the weights",
    "engine.memory.part.reference": "the reference model",
    "engine.memory.part.gradients": "the gradients",
    "engine.memory.part.optimizer": "the optimizer states",
    "engine.memory.part.activations": "the activations",
    "engine.memory.part.attention": "the attention mask",
    "engine.memory.part.logits": "the logits",
    "engine.memory.part.virtual": "the virtual tokens' activations",
    "engine.memory.or": "{first}, or {then}",
    "engine.memory.lower": "lower {key} (now {now})",
    "engine.memory.fewer_targets": "target fewer method.target_modules",
    "engine.memory.adapter_reference": "use an adapter method (method.name: lora), whose reference is the base with "
                                       "its adapter disabled, or the reference-free train.stage orpo or simpo",
    "engine.memory.smaller_model": "choose a smaller model, or a method that trains fewer parameters (method.name: "
                                   "lora, or qlora to load the weights in 4 bits)",
    "engine.memory.no_packing": "set train.packing: off",
    "engine.memory.or_advice": "; or {advice}",
    "engine.advice": "set {changes}: the estimate says it{fits}{rows}",
    "engine.advice.change": "{key} {then} (now {now})",
    "engine.advice.and": "{first}, {then}",
    "engine.advice.fits_in": " fits in about {gib} GiB",
    "engine.advice.fits": " fits",
    "engine.advice.rows": ", the same {rows} rows per update",
    # why a job failed (engine/jobs/failures.py, engine/train/launch.py)
    "engine.oom": "{what}: {advice}",
    "engine.oom.sized": "{what}: one allocation asked for {gib} GiB; {advice}",
    "engine.oom.gpu": "Out of GPU memory",
    "engine.oom.ram": "Out of memory (RAM)",
    "engine.oom.merging": "Out of memory while merging",
    "engine.oom.chatting": "Out of memory while chatting",
    "engine.oom.train_gpu": "lower train.batch_size or train.cutoff_len, turn on train.gradient_checkpointing, or "
                            "use qlora.",
    "engine.oom.train_ram": "lower train.batch_size or train.cutoff_len, or use a smaller model.",
    "engine.oom.merge": "export on a machine with more memory, or with --dtype bfloat16.",
    "engine.oom.chat": "unload other models, load on the CPU, or load the run in 4-bit.",
    "engine.disk_full.folder": "Disk full: free space in {folder} and {again}.",
    "engine.disk_full.workspace": "Disk full: free space on the workspace's disk and {again}.",
    "engine.again.resume": "Resume",
    "engine.again.start": "start it again",
    "engine.missing_package": "Missing package '{package}': run `pip install -r requirements.txt`.",
    "engine.died.oom_unsure": "The engine process was killed (SIGKILL) while the kernel's out-of-memory killer "
                              "ended a process; if it was this one: {reason}",
    "engine.died.oom_killed": "The kernel's out-of-memory killer ended the engine process (SIGKILL); {reason}",
    "engine.died.killed_by_hand": "The engine process was killed (SIGKILL) by hand or by another program, not by "
                                  "the out-of-memory killer.",
    "engine.died.killed": "The engine process was killed (SIGKILL).",
    "engine.died.signal": "The engine process was ended by signal {signal}.",
    "engine.died.exit_code": "The engine process exited with code {code} without a final status.",
    "engine.died.gone": "The engine process is gone without a final status (killed, or the machine restarted).",
    "engine.rank.failed": "Rank {rank} of {world} {how}, which ended the run{step}: its log is {log}.",
    "engine.rank.exit_code": "exited with code {code}",
    "engine.rank.signal": "was killed by {signal}",
    "engine.rank.after_step": " after step {step}",
    "engine.rank.torchrun": "torchrun ended with exit code {code} before the run started: see {log}.",
    **ENGLISH_MORE,  # tool-call and preference rows, rating, export, evaluation, chat loading, serving, values
    **ENGLISH_LOG,  # the run log's known lines and the page's frame of each events line
}  # fmt: skip

SAID = "said: "  # an engine command's line before its sentence: the sentence's key and values, as JSON (`tell`)
SAID_ENV = "WORKBENCH_SAY_KEYS"  # set by the page on the engine commands it reads: "1" asks for the SAID line


class Sentence(str):
    """An English sentence that remembers the key and values it was made from (`key` None: written as it is)."""

    key: str | None
    values: dict[str, Any]

    def __new__(cls, text: str, key: str | None = None, values: Mapping[str, Any] | None = None) -> Sentence:
        made = super().__new__(cls, text)
        made.key, made.values = key, dict(values or {})
        return made

    def __reduce__(self) -> tuple[Any, ...]:  # pickled with its key (an error crossing processes keeps it)
        return Sentence, (str(self), self.key, self.values)

    def lower_first(self) -> Sentence:
        """The same sentence in the middle of another: its English first letter in lower case."""
        return Sentence(self[:1].lower() + self[1:], self.key, self.values)

    def record(self) -> dict[str, Any]:
        """Key, values and text as JSON holds them (a value that is a Sentence as its own record)."""
        return {"key": self.key, "values": {name: _plain(value) for name, value in self.values.items()},
                "text": str(self)}

    @classmethod
    def of(cls, record: Any) -> Sentence | None:
        """The Sentence a `record` wrote; None where it is not one (a damaged or a foreign field)."""
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            return None
        key, values = record.get("key"), record.get("values")
        return cls.made(record["text"], key, values)

    @classmethod
    def made(cls, text: str, key: Any, values: Any) -> Sentence:
        """`text` with the key and values stored beside it (values' records made Sentences again); a key that is
        not a str, or values that are not a mapping, are left out: the text is then said as it is."""
        if not isinstance(key, str) or not isinstance(values, dict):
            return cls(text)
        return cls(text, key, {name: cls.of(value) or value if isinstance(value, dict) else value
                               for name, value in values.items()})


def _plain(value: Any) -> Any:
    if isinstance(value, Sentence):
        return value.record()
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value  # a value no wording shows, kept whole for the page (a file's column names)
    return str(value)


def said(key: str, /, **values: Any) -> Sentence:
    """The English sentence of `key` with `values` (str, numbers, or Sentences for parts with their own key)."""
    return Sentence(ENGLISH[key].format(**values), key, values)


def sentence_of(text: Any) -> Sentence:
    """`text` as a Sentence (an unkeyed one where it is a plain str)."""
    return text if isinstance(text, Sentence) else Sentence(str(text))


def worded(text: Any, table: Mapping[str, str]) -> str:
    """`text` in the language of `table` (a locale: key -> wording with the same {values}): the key's wording
    with its values, those that are Sentences worded too, where the table has the key; else `text` as written
    (an unkeyed sentence, or one whose key this page does not know: a newer engine's)."""
    key = getattr(text, "key", None)
    wording = table.get(key) if key else None
    if not wording:
        return str(text)
    values = {name: worded(value, table) if isinstance(value, Sentence) else value
              for name, value in text.values.items()}
    try:
        return wording.format(**values)
    except (KeyError, IndexError):  # a value this wording names that the engine did not give (another version)
        return str(text)


def keyed_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A status's fields with `error_key` and `error_values` where its `error` is a keyed Sentence (and without
    them where it is not: a new error replaces an old one's key)."""
    error = fields.get("error")
    plain = {name: value for name, value in fields.items() if name not in ("error_key", "error_values")}
    if not isinstance(error, Sentence) or error.key is None:
        return plain
    record = error.record()
    return {**plain, "error": str(error), "error_key": record["key"], "error_values": record["values"]}


def status_error(fields: Mapping[str, Any]) -> Sentence | None:
    """A status's (status.json's or a status event's) `error` as a Sentence with its key where it has one."""
    error = fields.get("error")
    if not isinstance(error, str):
        return None
    return Sentence.made(error, fields.get("error_key"), fields.get("error_values"))


def tell(text: Any, prefix: str = "", file: TextIO | None = None) -> None:
    """Print an engine command's sentence (after `prefix`, e.g. "error: ") on stderr as its last line, with the
    line `SAID` + its key and values before it where it has a key and the page asked for it (SAID_ENV: `heard`
    reads both back); a person, at a terminal or reading a log, reads the sentence alone."""
    file = file or sys.stderr
    if isinstance(text, Sentence) and text.key is not None and os.environ.get(SAID_ENV) == "1":
        print(SAID + json.dumps(text.record(), ensure_ascii=False), file=file)
    print(f"{prefix}{text}", file=file, flush=True)


def heard(stderr: str, fallback: str) -> Sentence:
    """The sentence an engine command printed last on stderr (`fallback` where it printed none), with its key
    where the line before it gave one (`tell`)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return Sentence(fallback)
    last = lines[-1]
    if len(lines) > 1 and lines[-2].startswith(SAID):
        try:
            found = Sentence.of(json.loads(lines[-2][len(SAID):]))
        except ValueError:
            found = None
        if found is not None and last.endswith(found):  # "error: SENTENCE": the line is the English
            return Sentence(last, found.key, found.values)
    return Sentence(last)
