"""The training stage of a run (`train.stage`) and the options of the preference stages, as config fields.

Plain Python (pydantic): engine.config builds TrainConfig on `StageOptions`, so these keys sit under `train:`
beside epochs and learning_rate, named as TRL names them: `beta` (every preference stage's config), `loss_type`,
`label_smoothing` (DPOConfig), `simpo_gamma` (CPOConfig, which trains SimPO with loss_type="simpo" and
cpo_alpha=0), `desirable_weight` / `undesirable_weight` (KTOConfig). `rpo_alpha` and `max_prompt_length` are the
names of earlier TRL releases, which 1.16's DPOConfig no longer has, so the engine applies them itself (rpo_alpha
as the weight of TRL's `sft` loss, engine/train/preference.py; max_prompt_length where it tokenizes pairs,
engine/data/preference.py).

A config written before stages existed has no `train.stage`: it reads as `sft`, which is what every run was
(continued pretraining on plain text included), so no migration step is needed. What each stage trains with
lives in engine/train/objectives.py; this module only says what may be set.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from engine.sentences import Sentence, said

Stage = Literal["sft", "pretrain", "dpo", "orpo", "kto", "simpo"]
STAGES: tuple[str, ...] = get_args(Stage)
PREFERENCE_STAGES = ("dpo", "orpo", "kto", "simpo")  # trained on pairs of a better and a worse reply
TRAINED_STAGES = STAGES  # every stage has its entry in engine/train/objectives.py
STAGE_TITLES = {
    "sft": "supervised fine-tuning", "pretrain": "continued pretraining", "dpo": "DPO", "orpo": "ORPO",
    "kto": "KTO", "simpo": "SimPO",
}  # fmt: skip
DpoLoss = Literal["sigmoid", "hinge", "ipo", "robust", "exo_pair", "bco_pair", "apo_zero", "apo_down"]
# prefix/prompt/P-tuning put virtual tokens before every row: whether TRL's DPO log-probabilities stay aligned
# with the replies under them is not tested here yet, so these methods are refused with a preference stage.
NO_PREFERENCE_METHODS = ("prefix", "prompt", "ptuning")
FULL_WEIGHT_METHODS = ("full", "freeze")  # their reference (dpo, kto) is a frozen copy of the whole starting model
SFT_SHAPES = ("alpaca", "sharegpt", "openai", "prompt_completion", "text")  # engine.data.formats.FORMATS
# The standard names data.columns may map a file's columns to: an SFT file's (engine.data.formats reads them) and a
# preference file's (engine.data.preference: the pair's, LLaMA-Factory's ranking files' and KTO's).
SFT_COLUMNS = (
    "instruction", "input", "output", "system", "history", "conversations", "messages",
    "prompt", "completion", "response", "text", "tools",
)  # fmt: skip
PAIR_COLUMNS = ("prompt", "chosen", "rejected", "system", "instruction", "input", "history", "conversations",
                "tools", "completion", "label")
REFERENCE_STAGES = ("dpo", "kto")  # compared with a reference model; orpo and simpo are reference-free
# The options each stage reads (the Train form shows only these; the others keep their defaults).
STAGE_OPTIONS: dict[str, tuple[str, ...]] = {
    "sft": (), "pretrain": (),
    "dpo": ("beta", "loss_type", "label_smoothing", "rpo_alpha", "max_prompt_length"),
    "orpo": ("beta", "max_prompt_length"),
    "simpo": ("beta", "simpo_gamma", "max_prompt_length"),
    "kto": ("beta", "desirable_weight", "undesirable_weight", "max_prompt_length"),
}  # fmt: skip


class StageOptions(BaseModel):
    """train.stage and the preference options (TRL's names), inherited by engine.config.TrainConfig."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    stage: Stage = Field("sft", description=(
        "What the run learns: sft imitates the replies in the data; pretrain continues on plain text; dpo "
        "learns to prefer the chosen reply over the rejected one of each pair, against a reference (the model it "
        "started from); orpo and simpo learn the same without a reference (cheaper: one forward pass per reply); "
        "kto learns from replies marked good or bad one by one (prompt, completion, label), no pairs needed."))
    beta: float = Field(0.1, gt=0, description=(
        "Preference stages: how far the model may move from where it started. dpo, kto: small (0.05) lets it "
        "change more to fit the pairs, large (0.5) keeps it close to the reference model. orpo: the weight of "
        "the preference term beside the chosen reply's SFT loss (0.1). simpo: the scale of its reward (the "
        "paper uses 2.0 to 2.5)."))
    loss_type: DpoLoss = Field("sigmoid", description=(
        "DPO's loss: sigmoid is the paper's; ipo resists overfitting on small data; robust and exo_pair "
        "expect some pairs to be labelled the wrong way round (see label_smoothing)."))
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description=(
        "DPO with loss_type robust or exo_pair: the share of pairs you think are labelled the wrong way round."))
    rpo_alpha: float | None = Field(None, ge=0, description=(
        "Adds the chosen reply's supervised loss to DPO's, weighted by this (RPO; 1.0 is the paper's value): "
        "keeps the model able to write the chosen answers, not only to rank them. Empty: off."))
    simpo_gamma: float = Field(0.5, ge=0, description=(
        "SimPO: the margin by which the chosen reply's reward (beta times its average log-probability per "
        "token) must beat the rejected one's before a pair stops teaching; larger asks for a clearer preference."))
    desirable_weight: float = Field(1.0, gt=0, description=(
        "KTO: the weight of the rows marked good (label true). With fewer good rows than bad ones, raise it "
        "so that both kinds count about as much (TRL suggests bad/good rows x undesirable_weight, up to 1.33x)."))
    undesirable_weight: float = Field(1.0, gt=0, description=(
        "KTO: the weight of the rows marked bad (label false); lower it when bad rows outnumber good ones."))
    max_prompt_length: int | None = Field(None, ge=1, description=(
        "Preference stages: tokens kept of each prompt (its end, nearest the reply); the whole pair is still "
        "cut at cutoff_len. Empty: no limit of its own."))


class StartOptions(BaseModel):
    """model.adapter, inherited by engine.config.ModelConfig: the finished run a run starts from."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    adapter: str | None = Field(None, description=(
        "A finished run of this same base (e.g. an SFT run) to start from: its adapter is merged into the base "
        "before training, so a preference stage improves the SFT model and compares with it (its reference). "
        "Empty: start from the base."))


def stage_problems(options: StageOptions, method: str, formats: list[str]) -> list[str]:
    """One sentence per way the stage does not fit the method or the data (`formats`: each dataset's data.format)."""
    stage = options.stage
    issues: list[str] = []
    if stage in PREFERENCE_STAGES:
        if method in NO_PREFERENCE_METHODS:
            issues.append(f"method '{method}' cannot train a preference stage yet (its virtual tokens are not tested "
                          "with TRL's preference trainers): use lora, dora, qlora or ia3.")
        shape = "rows of prompt, completion and label (or pairs)" if stage == "kto" else \
            "preference pairs (prompt, chosen, rejected)"
        issues += [f"train.stage '{stage}' reads {shape}: set data.format to auto, not {fmt}."
                   for fmt in dict.fromkeys(formats) if fmt != "auto"]
    elif stage == "pretrain":
        issues += [f"train.stage pretrain trains on plain text: set data.format to text or auto, not {fmt}."
                   for fmt in dict.fromkeys(formats) if fmt not in ("auto", "text")]
    if stage == "kto" and getattr(options, "batch_size", 2) < 2:
        issues.append("train.stage kto needs train.batch_size of 2 or more (it estimates its KL term from the other "
                      "replies of each batch): raise train.batch_size.")
    if stage != "dpo" and (options.loss_type != "sigmoid" or options.rpo_alpha is not None):
        issues.append(f"train.loss_type and train.rpo_alpha are DPO's options, not {STAGE_TITLES.get(stage, stage)}'s: "
                      "remove them or set train.stage to dpo.")
    if options.label_smoothing and options.loss_type not in ("robust", "exo_pair"):
        issues.append("train.label_smoothing is only read by loss_type robust or exo_pair: set one of them or "
                      "set label_smoothing to 0.")
    return issues


def shape_problem(stage: str, name: str, shape: str) -> Sentence | None:
    """The sentence for a dataset file whose shape (`shape`: the inspection's format, "preference..." for pairs,
    "kto" for replies marked good or bad, else an SFT format) train.stage `stage` does not read; None where it
    does. The engine raises the same sentence as it reads the file (engine.data.formats.detect_format for sft and
    pretrain, engine.data.preference for pairs), and the page refuses Start with it (webui.forms.prestart)."""
    if stage not in PREFERENCE_STAGES and shape.startswith(("preference", "kto")):
        kto = shape == "kto"
        return said("engine.stage.pairs_under_sft", name=name,
                    held=said("engine.stage.held_kto") if kto else said("engine.stage.held_pairs"),
                    stages="kto" if kto else said("engine.stage.pair_stages"))
    if stage in PREFERENCE_STAGES and shape in SFT_SHAPES:
        return said("engine.stage.sft_under_preference", name=name, shape=shape)
    if stage in ("dpo", "orpo", "simpo") and shape == "kto":
        return said("engine.stage.kto_under_pairs", name=name)
    return None


def stage_columns(stage: str) -> tuple[str, ...]:
    """The standard names data.columns may map to under `stage`: a preference stage's pair names, else SFT's."""
    return PAIR_COLUMNS if stage in PREFERENCE_STAGES else SFT_COLUMNS
