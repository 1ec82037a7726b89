"""The output head and the loss only where labels train, in chunks: no batch x length x vocabulary tensor.

A plain training step projects every position's hidden state through the output head (batch x length x
vocabulary logits, kept in float32 for the loss, and as much again for their gradient), although only the
positions whose next token is trained carry a label: on large vocabularies (Qwen's 152k, Gemma's 262k) these
logits are the largest allocation of the step. Here the model runs with `logits_to_keep=1` (its head projects
one position), a forward hook on the decoder keeps its last hidden states, and only the positions whose next
token has a label (labels != -100 after the shift) are projected, a chunk of positions at a time, the chunk's
loss and its gradients taken in one pass (_HeadLoss, as Liger Kernel's fused linear cross-entropy): its logits
exist only while that chunk is worked on, and the head's matmuls are no more than the full path's. The loss is
the model's own (transformers' ForCausalLMLoss: float32 cross-entropy, summed and divided by the Trainer's
`num_items_in_batch`, else the mean over trained positions). A LoRA on lm_head with dropout draws its masks over
the trained positions only: another draw than the full path's, of the same distribution.

The head is called as the model holds it, so tied embeddings, a head that trains (full, freeze) and a LoRA on
lm_head are what the plain path uses; each family's post-processing of the logits is FAMILIES' (Gemma-2's final
soft-capping, Cohere's logit scale, Granite's logit scaling). A model of a family not listed there, or one whose
loss is not the causal-LM default, keeps the full computation, and the run log says so.

Prompt-learning methods: prompt tuning and P-tuning put virtual tokens before the row, so the decoder's output
is longer than the labels; as peft does, the labels are padded with -100 in front (the last virtual token
predicts the row's first token where that has a label). Prefix tuning puts its tokens in the cache only.
The preference stage (DPO) keeps TRL's own loss over full logits (engine/train/preference.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional

from engine.estimate.memory import MIN_CHUNK, chunk_len  # noqa: F401  (MIN_CHUNK: its floor, tests read it here)
from engine.sentences import said

IGNORE = -100


def _plain(_causal: Any, logits: torch.Tensor) -> torch.Tensor:
    return logits


def _softcap(causal: Any, logits: torch.Tensor) -> torch.Tensor:
    cap = causal.config.final_logit_softcapping
    return logits if cap is None else torch.tanh(logits / cap) * cap


def _scale(causal: Any, logits: torch.Tensor) -> torch.Tensor:
    return logits * causal.logit_scale


def _divide(causal: Any, logits: torch.Tensor) -> torch.Tensor:
    return logits / causal.config.logits_scaling


# model_type -> what its ForCausalLM.forward does to the head's output before the loss (transformers 5.23,
# read in each modeling file). Mixture-of-experts families add a router loss and are not listed.
FAMILIES: dict[str, Callable[[Any, torch.Tensor], torch.Tensor]] = {
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "olmo2", "smollm3"), _plain),
    "gemma2": _softcap,
    "gemma3_text": _softcap,
    "cohere": _scale,
    "granite": _divide,
}


@dataclass(frozen=True)
class TrainedHead:
    """How a model's loss is taken over trained positions only: its decoder (whose output is hooked), its head
    and post-processing, and the positions per chunk (None: from the vocabulary and hidden size)."""

    decoder: torch.nn.Module
    causal: torch.nn.Module
    post: Callable[[Any, torch.Tensor], torch.Tensor]
    chunk: int | None = None

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.post(self.causal, self.causal.get_output_embeddings()(hidden)).float()

    def chunk_len(self, positions: int) -> int:
        return self.chunk or chunk_len(positions, self.causal.config.get_text_config().vocab_size,
                                       self.causal.config.get_text_config().hidden_size)


def plan(model: Any, chunk: int | None = None) -> tuple[TrainedHead | None, str]:
    """(the head's plan or None for the full computation, the run log's line saying which)."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    peft_type = str(getattr(getattr(model, "active_peft_config", None), "peft_type", "") or "")
    kind = getattr(causal.config, "model_type", "?")
    post = FAMILIES.get(kind)
    why = None
    if post is None:
        why = said("engine.log.head_unknown_type", kind=repr(kind))
    elif "CPT" in peft_type:
        why = said("engine.log.head_cpt")
    elif causal.loss_function.__name__ != "ForCausalLMLoss":
        why = said("engine.log.head_other_loss", loss=causal.loss_function.__name__)
    if why is not None:
        return None, said("engine.log.loss_full", why=why)
    head = TrainedHead(causal.get_decoder(), causal, post, chunk)
    return head, said("engine.log.loss_chunked")


def trained_loss(model: Any, head: TrainedHead, inputs: dict[str, Any],
                 num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """The causal-LM loss of `inputs` (with labels) as the model computes it, its head run on trained positions."""
    labels = inputs["labels"]
    kept: list[torch.Tensor] = []

    def keep(_module: Any, _args: Any, output: Any) -> None:
        kept.append(output[0])  # last_hidden_state, after the final norm

    hook = head.decoder.register_forward_hook(keep)
    try:
        model(**{k: v for k, v in inputs.items() if k != "labels"}, logits_to_keep=1)
    finally:
        hook.remove()
    hidden = kept[-1]
    virtual = hidden.shape[1] - labels.shape[1]  # prompt tuning, P-tuning: virtual tokens before the row
    if virtual > 0:
        labels = torch.cat([labels.new_full((labels.shape[0], virtual), IGNORE), labels], dim=1)
    targets = labels[:, 1:].to(hidden.device)
    trained = targets != IGNORE
    positions = hidden[:, :-1][trained]
    targets = targets[trained]
    total = chunked_cross_entropy(head, positions, targets)
    divisor = num_items_in_batch if num_items_in_batch is not None else trained.sum()
    if torch.is_tensor(divisor):
        divisor = divisor.to(total.device)
    return total / divisor


class _HeadLoss(torch.autograd.Function):
    """Summed cross-entropy of positions x hidden through the head, a chunk at a time, with the gradients taken in
    the same pass (as Liger Kernel's fused linear cross-entropy does): each chunk's logits, and the gradient of its
    logits, exist only while that chunk is worked on; backward scales the gradients kept (hidden states and the
    head's trainable parameters, no larger than they are) by the loss's incoming gradient. The head is called as
    a module and differentiated by autograd, so its post-processing, a LoRA on it or a trained head need nothing
    of their own."""

    @staticmethod
    def forward(ctx: Any, head: TrainedHead, wants_hidden: bool, hidden: torch.Tensor, targets: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        size = head.chunk_len(hidden.shape[0])
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.zeros_like(hidden) if wants_hidden else None
        grad_params = [torch.zeros_like(p) for p in params]
        for start in range(0, hidden.shape[0], size):
            with torch.enable_grad():
                part = hidden[start:start + size].detach().requires_grad_(wants_hidden)
                loss = functional.cross_entropy(head.project(part), targets[start:start + size], reduction="sum")
                grads = torch.autograd.grad(loss, ([part] if wants_hidden else []) + list(params))
            if wants_hidden:
                grad_hidden[start:start + size] = grads[0]
            for kept, grad in zip(grad_params, grads[int(wants_hidden):], strict=True):
                kept += grad
            total += loss.detach()
        ctx.save_for_backward(*([grad_hidden] if wants_hidden else []), *grad_params)
        ctx.wants_hidden = wants_hidden
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = [grad * grad_total.to(grad.dtype) for grad in ctx.saved_tensors]
        grad_hidden = saved.pop(0) if ctx.wants_hidden else None
        return (None, None, grad_hidden, None, *saved)


def chunked_cross_entropy(head: TrainedHead, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of `hidden` (positions x hidden) against `targets`, a chunk of positions at a time:
    under no_grad (evaluation) the loss alone, else the loss with its gradients taken chunk by chunk (_HeadLoss)."""
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0  # no trained position: zero, still part of the graph
    params = [p for p in head.causal.get_output_embeddings().parameters() if p.requires_grad]
    if torch.is_grad_enabled() and (hidden.requires_grad or params):
        return _HeadLoss.apply(head, hidden.requires_grad, hidden, targets, *params)
    size = head.chunk_len(hidden.shape[0])
    return sum(functional.cross_entropy(head.project(hidden[start:start + size]), targets[start:start + size],
                                        reduction="sum") for start in range(0, hidden.shape[0], size))
