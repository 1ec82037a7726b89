"""The English of the engine's later sentences a page visitor meets (engine.sentences.ENGLISH takes them all).

Tool-call and preference rows, a rating in the chat, an export, an evaluation and its judge, the chat worker's
loading, serving, and a config value pydantic refuses (worded from pydantic's error type and its context, see
engine.config_read.value_problem). Kept apart from engine/sentences.py only for its length; a key's Chinese is in
assets/locales/zh.json, as for every key. Plain Python: a table.
"""

from __future__ import annotations

ENGLISH_MORE: dict[str, str] = {
    # a value pydantic refuses: "{subject} is {input}: " + pydantic's message of its error type, in lower case
    "engine.value.greater_than": "{subject} is {input}: input should be greater than {gt}.",
    "engine.value.greater_than_equal": "{subject} is {input}: input should be greater than or equal to {ge}.",
    "engine.value.less_than": "{subject} is {input}: input should be less than {lt}.",
    "engine.value.less_than_equal": "{subject} is {input}: input should be less than or equal to {le}.",
    "engine.value.literal_error": "{subject} is {input}: input should be {expected}.",
    "engine.value.int_type": "{subject} is {input}: input should be a valid integer.",
    "engine.value.int_parsing": "{subject} is {input}: input should be a valid integer, unable to parse string as "
                                "an integer.",
    "engine.value.int_from_float": "{subject} is {input}: input should be a valid integer, got a number with a "
                                   "fractional part.",
    "engine.value.float_type": "{subject} is {input}: input should be a valid number.",
    "engine.value.float_parsing": "{subject} is {input}: input should be a valid number, unable to parse string as "
                                  "a number.",
    "engine.value.bool_type": "{subject} is {input}: input should be a valid boolean.",
    "engine.value.bool_parsing": "{subject} is {input}: input should be a valid boolean, unable to interpret input.",
    "engine.value.string_type": "{subject} is {input}: input should be a valid string.",
    "engine.value.list_type": "{subject} is {input}: input should be a valid list.",
    "engine.value.dict_type": "{subject} is {input}: input should be a valid dictionary.",
    "engine.value.invalid": "{subject} is {input}: {reason}.",
    "engine.value.or": "{first} or {last}",
    "engine.value.item": "{list} item {number}",
    "engine.value.in_item": "'{key}' in {item}",
    "engine.sampling.unknown": "Unknown sampling setting '{name}': use {fields}.",
    # tool calls in a row (engine/data/toolcalls.py; the problem after "field 'NAME' ")
    "engine.tool.not_schemas": "must be a list of function schemas like [{{\"name\": ..., \"parameters\": {{...}}}}]",
    "engine.tool.no_name": "has no 'name': give every tool a name",
    "engine.tool.empty_call": "is an empty list: write the call as {{\"name\": ..., \"arguments\": {{...}}}}",
    "engine.tool.empty_calls": "is an empty list: remove it or write the calls",
    "engine.tool.not_a_call": "must be an object like {{\"name\": ..., \"arguments\": {{...}}}}",
    "engine.tool.no_function": "has no function name: write the name of the tool called",
    "engine.tool.bad_arguments": "must be a JSON object of argument names and values",
    "engine.tool.bad_json": "is not valid JSON ({reason} at column {column}): fix the JSON",
    "engine.row.not_a_turn": "must be an object like {{\"role\": \"user\", \"content\": \"...\"}}",
    "engine.row.bad_history": "must be a list of [user, assistant] pairs",
    "engine.row.not_a_history_pair": "must be a [user, assistant] pair",
    "engine.row.empty_history_turn": "has an empty turn: write both the user message and the reply",
    "engine.row.lone_tool_result": "has a tool result (turn {turn}) that follows no tool call: put each "
                                   "observation/tool turn right after its function_call",
    # preference pairs and KTO rows (engine/data/preference.py, unpaired.py)
    "engine.pair.missing_side": "is missing: a preference pair needs a prompt, the chosen reply and the rejected one",
    "engine.pair.other_conversation": "continues another conversation than 'chosen': both replies must answer the "
                                      "same prompt",
    "engine.pair.same_reply": "is the same reply as 'chosen': a pair teaches nothing unless its replies differ, fix "
                              "or remove the row",
    "engine.pair.no_prompt_turns": "must be a non-empty list of turns: the prompt both replies answer",
    "engine.pair.empty_prompt": "is empty: write the prompt both replies answer, or remove the row",
    "engine.pair.empty_reply": "is empty: write the reply, or remove the row",
    "engine.pair.bad_reply": "must be the reply as text, or a list of turns ending in {{\"role\": \"assistant\", "
                             "\"content\": \"...\"}}",
    "engine.pair.with_prompt": "{side} (with its prompt)",
    "engine.pair.same_once": "{name} row {number}: field 'rejected' is the same reply as 'chosen' once {made}: a "
                             "pair teaches nothing unless its replies differ, fix or remove the row.",
    "engine.pair.made_by_reasoning": "data.reasoning drop cut their reasoning",
    "engine.pair.made_by_replace": "data.replace filled their placeholders",
    "engine.pair.no_reply_token": "{name} row {number}: the chat template renders no token of the {side} reply.",
    "engine.pair.prompt_differs": "{name} row {number}: the chat template writes the prompt differently before the "
                                  "chosen and the rejected reply, so they cannot share it; check the template.",
    "engine.pair.none_left": "{name} has no {noun} left after cutoff_len={cutoff}: raise train.cutoff_len, set "
                             "train.max_prompt_length, or set data.overlength to truncate.",
    "engine.pair.noun_pair": "pair",
    "engine.pair.noun_row": "row",
    "engine.pair.too_few_for_val": "{name} has only {pairs} pairs, too few to hold out val_size={val_size}: lower "
                                   "data.val_size or add pairs.",
    "engine.kto.bad_label": "is {label}: write true for a good reply or false for a bad one",
    "engine.kto.empty_prompt": "is empty: write the prompt the reply answers, or remove the row",
    "engine.kto.bad_reply": "must be the reply as text, or one turn {{\"role\": \"assistant\", \"content\": "
                            "\"...\"}}",
    "engine.kto.one_label": "{name} has only {kind} replies (every label is {label}): KTO learns from both good and "
                            "bad ones, add rows of the other label.",
    "engine.kto.good": "good",
    "engine.kto.bad": "bad",
    "engine.kto.too_few_for_val": "{name} has only {rows} rows, too few to hold out val_size={val_size}: lower "
                                  "data.val_size or add rows.",
    # rating answers in the chat (engine/data/pairfile.py, webui/jobs/pairs.py)
    "engine.rate.no_question": "There is no question to pair the answers with: send a message first.",
    "engine.rate.empty_answer": "An answer is empty: wait for both answers (or write the better one) before rating.",
    "engine.rate.same_answers": "The two answers are the same, so the pair would teach nothing: write a better "
                                "answer.",
    "engine.rate.not_text": "Only answers in plain text can be rated: a tool call or a file is not one.",
    "engine.rate.no_answer": "There is no answer to rate yet: send a message and wait for the reply.",
    "engine.rate.needs_two": "Rating needs two answers: tick side by side and send the message again.",
    "engine.rate.choose": "Choose the better answer, or write a better one first.",
    # an export (engine/export/merge.py, verify.py)
    "engine.export.bad_dtype": "dtype {dtype} is not one of {dtypes}.",
    "engine.export.no_weights": "{run} has no {folder}/ folder: the run has not finished, so there is nothing to "
                                "export.",
    "engine.export.link": "{link} is a symbolic link (to {target}), not a file the run wrote: an export copies only "
                          "the run's own files, so replace the link with the file or delete it.",
    "engine.export.exists": "{out} already exists: choose another --out, or give --overwrite to replace it.",
    "engine.export.done_before": "{path} holds a completed export of this run: give --overwrite to replace it, or "
                                 "--out DIR to write another folder.",
    "engine.export.running": "An export is running in {path}: wait for it or stop it first.",
    # a run given on the command line by its folder or its name (engine/jobs/workspace.py)
    "engine.run.no_folder": "{path} does not exist: give a run's folder, or the name of a run in the workspace "
                            "(WORKSPACE/runs/NAME; --workspace DIR names the workspace).",
    "engine.run.not_found": "{given} is neither a folder ({path} does not exist) nor a run of the workspace ({named} "
                            "does not exist): give a run's folder, or the name of a run in WORKSPACE/runs "
                            "(--workspace DIR names the workspace).",
    # a config whose output_dir holds a run (engine/train/output_dir.py)
    "engine.output_dir.holds_run": "output_dir {path} already holds a run ({state}): choose another output_dir, or "
                                   "start it afresh with --overwrite (deletes its outputs){resume}.",
    "engine.output_dir.resume": ", or continue it from its last checkpoint with --resume {path}",
    "engine.export.inside_run": "--out {out} is inside the run folder: export somewhere else.",
    "engine.export.unmergeable": "{title} learns virtual tokens that are fed to the model with every input, not a "
                                 "change of its weights, so it cannot be merged: the export holds the adapter, "
                                 "loadable with peft.",
    "engine.export.interrupted": "The export was interrupted; nothing was written.",
    "engine.export.logits_differ": "Verification failed: the exported model's logits differ from the trained "
                                   "model's by {diff}, above the {dtype} tolerance {tolerance}.",
    "engine.export.base_logits": "Verification failed: the exported model gives the base model's logits (difference "
                                 "{diff}, within the {dtype} tolerance {tolerance}), so the training left no trace "
                                 "in it: the run changed the model by less than {dtype} can hold. Export in float32, "
                                 "or train the run longer or at a higher learning rate.",
    "engine.export.adapter_unchanged": "Verification failed: the {title} adapter leaves the base model's logits "
                                       "unchanged (difference {diff}), so the training left no trace in it.",
    # an evaluation (engine/eval/, engine/config_eval.py)
    "engine.eval.no_rows": "The test set {where} has no rows: give a dataset with rows to evaluate.",
    "engine.eval.no_validation": "The run {run} held out no validation rows (its data.val_size is 0): give the test "
                                 "set as data instead.",
    "engine.eval.preference_run": "The run {run} trained on preference pairs ({stage}): give a test set of prompts "
                                  "and replies as data instead.",
    "engine.eval.unfinished": "The run {run} has not finished: there is no model to read its tokenizer from.",
    "engine.eval.preference_rows": "{name} holds {held}, but an evaluation reads SFT rows, a prompt and the reply "
                                   "to compare each answer with: choose a file of prompt/completion, "
                                   "instruction/output or messages rows (for example {example}), or the validation "
                                   "split of an SFT run.",
    "engine.eval.example_kto": "the rows marked good, without their label",
    "engine.eval.example_pairs": "each pair's prompt with its chosen reply as the completion",
    "engine.eval.no_model": "The model {source} does not exist: give a run folder, an exported model folder or "
                            "'base'.",
    # the Compare form's refusals (webui/forms/compare_table.py)
    "engine.eval.choose_model": "Choose at least one model to evaluate: base, a finished run, or both.",
    "engine.eval.choose_test_set": "Choose a test set: a dataset file, or the validation split of a run.",
    "engine.eval.choose_run": "Choose a run beside base: the base model is the one the run trained on.",
    "engine.compare.no_methods": "Choose at least one method to compare.",
    "engine.compare.no_dataset": "Choose a dataset: every method trains on it.",
    "engine.compare.preset_unread": "The preset of {method} cannot be read: give a number as its learning rate and "
                                    "its options as a JSON object, like {{\"r\": 16}}.",
    "engine.compare.preset_options": "The options of {method} must be a JSON object, like {{\"r\": 16}}.",
    "engine.eval.different_bases": "The runs were trained on different base models ({bases}), so 'base' names "
                                   "none of them: set base to the one to answer as 'base', or leave 'base' out "
                                   "of models.",
    "engine.eval.no_base": "No run names its base model: set base to the base model's hub id or folder.",
    "engine.judge.no_key": "eval.judge.api_key_env names {env}, which is not set in this process's environment: "
                           "export it before starting the evaluation, or clear api_key_env.",
    "engine.judge.refused_key": "The judge at {url} refused the key in {env} (HTTP {code}): put a key it accepts in "
                                "{env}, or name another variable in eval.judge.api_key_env.",
    "engine.judge.needs_key": "The judge at {url} refused a request without a key (HTTP {code}): name the variable "
                              "that holds its key in eval.judge.api_key_env.",
    "engine.judge.not_found": "The judge at {url} answered HTTP {code} (not found): check eval.judge.base_url and "
                              "that it serves the model {model}.",
    "engine.judge.unreachable": "The judge at {url} cannot be reached ({reason}): check eval.judge.base_url and "
                                "that the server is running.",
    # the chat worker loading a model and answering (engine/chat/plan.py, session.py; webui/jobs/chat_client.py)
    "engine.chat.different_starts": "The chosen runs start from different models (model.adapter in their "
                                    "config.yaml): load the runs of one starting point at a time.",
    "engine.chat.outside": "{path} is outside the folders this server may read: put it under the workspace, or "
                           "start the server with --allow-path DIR.",
    "engine.chat.no_folder": "Adapter '{name}': {path} does not exist.",
    "engine.chat.not_an_adapter": "Adapter '{name}': {path} is neither a finished run folder nor a PEFT adapter "
                                  "folder.",
    "engine.chat.no_base": "No model given and no adapter names its base model: set \"model\".",
    "engine.chat.different_bases": "The adapters were trained on different base models ({bases}): load adapters of "
                                   "one base at a time.",
    "engine.chat.different_kinds": "These adapters are of different kinds ({kinds}) and peft cannot stack them over "
                                   "one base: load adapters of one kind at a time.",
    "engine.chat.does_not_fit": "Adapter '{name}' from {path} does not fit {model}: {reason}",
    "engine.chat.template": "The chat template cannot render this conversation: {reason}",
    "engine.chat.generation_failed": "Generation failed: {kind}: {reason}",
    "engine.chat.worker_not_started": "The chat worker did not start{ended}: see chat_worker.log in the workspace.",
    "engine.chat.worker_ended": " (it ended with exit code {code})",
    "engine.chat.worker_stopped": "The chat worker stopped (exit code {code}).",
    # serving (engine/serve/, webui/jobs/serving.py)
    "engine.serve.no_runs": "{runs} holds no finished run to serve: train one first, or serve a model folder with "
                            "--model DIR.",
    "engine.serve.port_in_use": "port {port} on {host} is already in use: stop that server or choose another port "
                                "with --port.",
    "engine.serve.stopped": "The server stopped (exit code {code}): {reason}",
    "engine.serve.ended_by": "The server was ended by {signal}: {reason}",
    "engine.serve.host_refused": "This server answers only to the names it was started for, not {name}: start it "
                                 "with --allow-host {name} to reach it by that name.",
}  # fmt: skip
