"""`train.metric_for_best` and `train.early_stopping_patience`: which checkpoint a run keeps, and when it stops early.

Plain Python (pydantic): engine.config builds TrainConfig on `BestOptions`, as on TrackerOptions. They act only in
a run with a validation split (data.val_size): the run evaluates on it (every train.eval_steps, else once per
epoch) and the Trainer keeps the checkpoint with the best value of metric_for_best (transformers'
load_best_model_at_end; a checkpoint is then written at every evaluation), so the adapter or model the run saves is
that best one and the run's metrics.json names its step. With early_stopping_patience K above 0, the run stops after
K evaluations in a row without improvement (transformers' EarlyStoppingCallback). Without a validation split
nothing changes: the saved weights are the last step's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_METRIC = "eval_loss"
# Metrics where a lower value is better: losses and perplexity; anything else (accuracies, rewards) is higher-better.
LOWER_IS_BETTER = ("loss", "perplexity")


class BestOptions(BaseModel):
    """train.metric_for_best and train.early_stopping_patience, inherited by engine.config.TrainConfig."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    metric_for_best: str = Field(DEFAULT_METRIC, min_length=1, description=(
        "With a validation split: the evaluation metric whose best value picks the checkpoint the run keeps "
        "(eval_loss; a preference stage also logs e.g. eval_rewards/accuracies). Lower is better for a loss, "
        "higher for anything else."))
    early_stopping_patience: int = Field(0, ge=0, description=(
        "With a validation split: stop after this many evaluations in a row without a better metric_for_best "
        "(0: never stop early)."))

    @field_validator("metric_for_best")
    @classmethod
    def _eval_prefix(cls, value: str) -> str:
        """`loss` names the same metric as `eval_loss`, as the Trainer reads it."""
        value = value.strip()
        return value if value.startswith("eval_") else f"eval_{value}"

    def best_problems(self, has_validation: bool) -> list[str]:
        if self.early_stopping_patience and not has_validation:
            return ["train.early_stopping_patience needs a validation set to watch: set data.val_size above 0, or "
                    "set the patience to 0."]
        return []


def greater_is_better(metric: str) -> bool:
    return not any(word in metric for word in LOWER_IS_BETTER)
