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
    "engine.log.left_out": "--- {n} lines left out here: every line is in the log file of the job's folder ---",
    # a training run's lines (engine/train/recipe.py, objectives.py, output_dir.py; engine/data/)
    "engine.log.dataset": "dataset {name}: {count}, format {format}",
    "engine.log.rows": "{n} rows",
    "engine.log.rows_of": "{n} of {read} rows",
    "engine.log.datasets": "dataset {each} — {rows} rows, {how}",
    "engine.log.dataset_part": "{name}: {count} ({format})",
    "engine.log.concatenated": "concatenated",
    "engine.log.interleaved": "interleaved",
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
    # a run's setup lines (engine/train/batching.py, trainer.py, kernels.py, logits.py, preflight.py, strategy.py,
    # nodes.py, trackers.py, world.py; engine/estimate/memory.py)
    "engine.log.joined": "{first}; {then}",
    "engine.log.comma": "{first}, {then}",
    "engine.log.batching_auto": "batching: {choice} (auto: packing estimated at {ratio}x the cost of padding, where "
                                "padding is {padding} of padded tokens and packed rows {packed}, with {attention}x "
                                "the attention work)",
    "engine.log.packed": "packed ({how})",
    "engine.log.grouped_padding": "length-grouped padding",
    "engine.log.pack_varlen": "one row per batch, per-example attention",
    "engine.log.pack_rows": "rows of at most {pack_len} tokens",
    "engine.log.batching_padded": "batching: length-grouped padding ({why})",
    "engine.log.packing_off": "off",
    "engine.log.virtual_tokens_first": "{method} puts virtual tokens before every row",
    "engine.log.batching_packed_on": "batching: packed rows of at most {pack_len} tokens (train.packing: on)",
    "engine.log.batching_one_row": "batching: one row per batch (batch_size 1: nothing to pack)",
    "engine.log.batching_pairs": "batching: each pair's chosen and rejected replies padded side by side (pairs are "
                                 "not packed)",
    "engine.log.batching_kto": "batching: rows padded in a fixed order (KTO pairs each row with its batch neighbours "
                               "for its KL estimate; rows are not packed)",
    "engine.log.loss_fused": "loss: Liger Kernel's fused linear cross-entropy, the head's weight and the loss a chunk "
                             "of positions at a time on CUDA (no batch x length x vocabulary logits; "
                             "engine/train/kernels.py)",
    "engine.log.loss_sharded": "loss: full logits at every position (FSDP or ZeRO-3 shard the output layer's weights)",
    "engine.log.loss_full": "loss: full logits at every position ({why}; engine/train/logits.py)",
    "engine.log.loss_chunked": "loss: the output head projects only the positions whose next token trains, in chunks "
                               "(no batch x length x vocabulary logits; engine/train/logits.py)",
    "engine.log.head_unknown_type": "the model type {kind} is not one whose logits the engine knows how to take in "
                                    "part",
    "engine.log.head_cpt": "CPT prompts carry labels of their own",
    "engine.log.head_other_loss": "the model's loss is {loss}, not the causal-LM cross-entropy",
    "engine.log.kernels_none": "kernels: none (train.kernels: none)",
    "engine.log.kernels_trl": "kernels: none (the {stage} stage keeps TRL's own loss)",
    "engine.log.kernels_no_cuda": "kernels: no Liger Kernel (no CUDA device; train.kernels: auto)",
    "engine.log.kernels_without": "kernels: no Liger Kernel ({why}; train.kernels: auto)",
    "engine.log.kernels_liger": "kernels: Liger Kernel's for {kind} (train.kernels: {setting})",
    "engine.log.kernels_unfused": "kernels: Liger Kernel's for {kind} (train.kernels: {setting}), but not its fused "
                                  "loss: {kept}",
    "engine.log.liger_no_import": "liger-kernel cannot be imported ({error}; {install})",
    "engine.log.liger_no_family": "Liger Kernel has no kernels for the model type {kind}",
    "engine.log.unfused_post": "it leaves out how {kind} post-processes its logits",
    "engine.log.unfused_head": "the output head has an adapter or a bias, which it would leave out",
    "engine.log.unfused_loss": "the model's loss is not the causal-LM cross-entropy",
    "engine.log.memory_estimate": "memory estimate: one step needs about {summary} with {tokens} tokens in the "
                                  "largest batch; {free} GiB of {where} is free beside the loaded weights{tight}",
    "engine.log.memory_tight": " (tight: it may not fit)",
    "engine.log.memory_virtual": "memory check: the virtual tokens need at least {needed} GiB",
    "engine.log.memory_summary": "{total} GiB ({parts})",
    "engine.log.memory_part": "{part} {size}",
    "engine.log.part.weights": "weights",
    "engine.log.part.reference": "reference model",
    "engine.log.part.gradients": "gradients",
    "engine.log.part.optimizer": "optimizer states",
    "engine.log.part.activations": "activations",
    "engine.log.part.attention": "attention mask",
    "engine.log.part.logits": "logits",
    "engine.log.part.virtual": "virtual tokens' activations",
    "engine.log.part.overhead": "overhead",
    "engine.log.dist_set": "distributed: {name}{zero}{offload} in {world} process(es), as distributed.strategy says",
    "engine.log.dist_offload": " with CPU offload",
    "engine.log.dist_zero": " stage {stage}",
    "engine.log.dist_auto_adapter": "distributed: auto chose DDP in {world} processes: {method} trains an adapter, "
                                    "small enough for every process to hold the whole model",
    "engine.log.dist_auto_unknown": "distributed: auto chose DDP in {world} processes: the model's size could not be "
                                    "read from its config.json",
    "engine.log.dist_auto_fits": "distributed: auto chose DDP in {world} processes: one step of {method} needs about "
                                 "{needed}, which fits one device's {capacity}",
    "engine.log.dist_auto_no_deepspeed": "distributed: auto chose DDP in {world} processes: one step of {method} "
                                         "needs about {needed}, more than one device's {capacity}, but on the CPU "
                                         "only DeepSpeed ZeRO-3 shards it and deepspeed is not installed",
    "engine.log.dist_auto_sharded": "distributed: auto chose {name} in {world} processes: one step of {method} needs "
                                    "about {needed}, more than one device's {capacity}; sharded, each process needs "
                                    "about {each}",
    "engine.log.dist_held": "distributed: each process holds {held} MB of the weights' {whole} MB ({name} over "
                            "{world} process(es))",
    "engine.log.nodes": "nodes: the {count} nodes {folders}: {keeps}; node 0 keeps the events, status and final "
                        "weights",
    "engine.log.nodes_shared": "share node 0's run folder",
    "engine.log.nodes_own": "each keep a run folder of their own (no shared filesystem)",
    "engine.log.nodes_each_keeps": "each node keeps the checkpoints a resume needs in its own folder",
    "engine.log.nodes_node_0_keeps": "node 0 alone keeps the checkpoints",
    "engine.log.report_to": "report_to: {name} ({place})",
    "engine.log.resumed_world": "{checkpoint} was written by {written} process(es) and resumes in {wanted}: the "
                                "global batch stays {batch} rows ({before} before, {now} now: processes x rows x "
                                "accumulation steps), so training continues at step {step} with row {row} of epoch "
                                "{epoch} ({per_epoch} step(s) of {batch} rows an epoch, {order}); a process the "
                                "checkpoint holds no random state for starts its dropout masks from the seed",
    "engine.log.order_shuffled": "one shuffled order of all rows, which the processes take in turns",
    "engine.log.order_grouped": "a new epoch of length-grouped batches",
    # an export's steps (engine/export/merge.py, verify.py; engine/model/loading.py's grown vocabulary)
    "engine.log.exporting": "exporting {run} ({method}) to {out}",
    "engine.log.export_loading": "loading the base {base} in {dtype}{note}",
    "engine.log.export_bits": " (it trained {bits}-bit; merging into full weights, not quantized ones)",
    "engine.log.export_merging": "merging the {method} adapter into the base",
    "engine.log.export_writing_merged": "writing the merged model (shards up to {shard})",
    "engine.log.export_writing_whole": "writing the trained model in {dtype} (shards up to {shard})",
    "engine.log.export_no_base": "the base model cannot be loaded ({error}): skipping the differs-from-base check",
    "engine.log.export_verifying_adapter": "verifying: loading the written adapter with peft over the base",
    "engine.log.export_reloading": "verifying: reloading the written folder without peft",
    "engine.log.export_builtin_prompts": "the run's dataset cannot be read ({error}): verifying on built-in prompts",
    "engine.log.export_verified": "verified: max |logit difference| {diff} (tolerance {tolerance}), {base} from the "
                                  "base model",
    "engine.log.export_no_figures": "the model card has no training figures: {error}",
    "engine.log.export_error": "error: {error}",
    "engine.log.wrote": "wrote {path}",
    "engine.log.embeddings_redrawn": "warning: the tokenizer has {added} tokens more than the base but the adapter "
                                     "'{name}' does not carry their rows; they are re-initialised, so the model may "
                                     "not reproduce training exactly around those tokens",
    # an evaluation's steps (engine/eval/job.py, testset.py, models.py)
    "engine.log.eval_file": "{name} ({format}, {rows} rows)",
    "engine.log.eval_validation_of": "the validation rows of {run} ({held} of {rows} rows of {name})",
    "engine.log.eval_loss_only": "{count} of {rows} rows have no assistant reply to compare with (plain text): they "
                                 "count for the loss only",
    "engine.log.eval_test_set": "test set: {where}; {rows} rows",
    "engine.log.eval_loading_base": "loading the base {model}{adapters}",
    "engine.log.eval_adapters": " with {count} adapter(s)",
    "engine.log.eval_loading_started": "loading the base {model} with {start} merged, and {count} adapter(s) trained "
                                       "from it",
    "engine.log.eval_loading_group": "loading the base {model} again for {count} adapter(s) of another kind "
                                     "({kind}): peft stacks adapters of one kind over one base",
    "engine.log.eval_loading": "loading {name} ({path})",
    "engine.log.eval_evaluating": "evaluating {name}",
    "engine.log.eval_stopped": "stopped: nothing was written",
    "engine.log.judge": "judge: {model} at {url}, {rows} rows",
    "engine.log.judge_error": "judge: {error}",
    "engine.log.judge_unread": "judge: {failed} of its replies could not be read (judge.jsonl keeps them)",
    "engine.log.general_header": "general prompts ({prompts}): mean tokens, stopped, changed from base, length change",
    # a comparison's lines (engine/compare/job.py, estimates.py; engine/estimate/lengths.py)
    "engine.log.compare_done": "{method}: completed earlier ({path}), not trained again",
    "engine.log.compare_training": "{method}: training in {path}",
    "engine.log.compare_resuming": "{method}: resuming in {path}",
    "engine.log.compare_evaluating": "{method}: evaluating in {path}",
    "engine.log.compare_stopped": "{method}: stopped",
    "engine.log.compare_failed": "{method}: failed: {reason} (log: {log})",
    "engine.log.compare_eval_failed": "{method}: evaluation failed: {reason} (log: {log})",
    "engine.log.compare_exit_code": "the engine exited with code {code}",
    "engine.log.compare_its_evaluation": "its evaluation: {reason}",
    "engine.log.compare_job_failed": "{methods} failed ({first}: {why}); the other methods are in the table: fix the "
                                     "cause and run the comparison again to retry {them}.",
    "engine.log.compare_it": "it",
    "engine.log.compare_them": "them",
    "engine.log.lengths_unmeasured": "the data's token lengths could not be measured ({error}): the estimate takes "
                                     "rows of {cutoff} tokens",
    "engine.log.estimate_head": "memory before Start on {device}, {free} GiB free{basis}:",
    "engine.log.estimate_gpu": "the GPU (VRAM)",
    "engine.log.estimate_cpu": "the CPU (RAM)",
    "engine.log.estimate_basis": " (the largest batch of the data's {rows} measured rows, the longest {longest} "
                                 "tokens)",
    "engine.log.estimate_method": "  {method}  {text}",
    "engine.log.estimate_none": "no estimate (the base model's config.json is not at hand or lacks the sizes)",
    "engine.log.estimate_one": "{total} GiB  {verdict} (largest part: {largest})",
    "engine.log.verdict.fits": "fits",
    "engine.log.verdict.tight": "tight",
    "engine.log.verdict.no_fit": "will not fit",
}  # fmt: skip
