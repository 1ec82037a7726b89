"""The English of the run log's known lines (engine.sentences.ENGLISH takes them all).

The engine's progress and lifecycle lines (data read, tokenized, trainable parameters, resumed, saved, the
fallbacks it took) are made with `said(KEY, ...)`: the log file and stdout read the English, the events carry the
key and values beside it (engine.jobs.events.Log), and the page's log box words them in the visitor's language,
as Windows' event log and systemd's journal catalog word an event from its id and values at the time it is read.
The `engine.log.line.*` keys are the page's frame of each events line (webui.jobs.monitor.format_event: its time,
level or kind); a line without a key (a library's, a newer engine's) keeps its English inside the frame.
Plain Python: a table; a key's Chinese is in assets/locales/zh.json, as for every key.
"""

from __future__ import annotations

ENGLISH_LOG: dict[str, str] = {
    # the page's frame of an events line (webui/jobs/monitor.py, webui/components/render.py)
    "engine.log.line.log": "{stamp} {level:<7} {message}",
    "engine.log.line.status": "{stamp} status  {state}",
    "engine.log.line.status_error": "{stamp} status  {state}: {error}",
    "engine.log.line.metrics": "{stamp} metrics step {step} {figures}",
    "engine.log.line.other": "{stamp} {kind}",
    "engine.log.level.info": "info",
    "engine.log.level.warning": "warning",
    "engine.log.level.error": "error",
    "engine.log.damaged": "{file} has a damaged line, skipped ({reason}).",
    "engine.log.output_tail": "--- last lines of the engine's output ---",
    # a training run's lines (engine/train/recipe.py, objectives.py, output_dir.py; engine/data/)
    "engine.log.dataset": "dataset {name}: {count}, format {format}",
    "engine.log.rows": "{n} rows",
    "engine.log.rows_of": "{n} of {read} rows",
    "engine.log.chatml": "the tokenizer has no chat template: using ChatML (saved with the weights)",
    "engine.log.tools_as_text": "the chat template cannot render tool calls: tools, calls and results are written as "
                                "text (<tools>, <tool_call>, <tool_response>; see the README)",
    "engine.log.reasoning_as_text": "the chat template reads no reasoning field: reasoning is written into the reply "
                                    "as {opening}...{closing} before its text",
    "engine.log.reasoning_cut": "the chat template cuts the reasoning out of every reply, the last one too (as "
                                "DeepSeek-R1's does): each row's last reply gets its reasoning written back before its "
                                "text, as the model writes it after the generation prompt, and trained; earlier "
                                "replies are trained as the template writes them, without it",
    "engine.log.tokenized": "tokenized: {train} train / {val} validation rows, {truncated} truncated and {dropped} "
                            "dropped at cutoff_len {cutoff}{cached}",
    "engine.log.from_cache": " (read from the tokenized-rows cache, engine.data.tokcache)",
    "engine.log.tokenized_pairs": "tokenized: {train} train / {val} validation pairs, {truncated} truncated and "
                                  "{dropped} dropped at cutoff_len {cutoff}",
    "engine.log.tokenized_kto": "tokenized: {train} train rows ({good} good, {bad} bad) / {val} validation rows, "
                                "{truncated} truncated and {dropped} dropped at cutoff_len {cutoff}",
    "engine.log.bulk_dropout": "lora_dropout: {layers} layers draw their masks in bulk on the CPU "
                               "(engine.model.dropout)",
    "engine.log.trainable": "trainable params: {trainable} || all params: {total} || trainable%: {percent}",
    "engine.log.incomplete_one": "{names} is incomplete (killed while it was written)",
    "engine.log.incomplete_many": "{names} are incomplete (killed while they were written)",
    "engine.log.resuming": "resuming from {checkpoint}",
    "engine.log.removed_resuming": "{incomplete}: removed; resuming from {checkpoint}",
    "engine.log.checkpoint_saved": "{checkpoint} saved (a run stopped or killed later resumes from it)",
    "engine.log.last_step": "{checkpoint} is the last step: nothing is left to train, its weights are saved again",
    "engine.log.kept": "kept the weights of step {step}, the best {metric} ({value}){early}",
    "engine.log.stopped_early": "; stopped early at step {step}",
    "engine.log.saved": "saved {folder}/ ({size} MB); {loss}, {speed} tokens/s",
    "engine.log.train_loss": "train loss {loss}",
    "engine.log.no_train_loss": "no train loss logged",
}  # fmt: skip
