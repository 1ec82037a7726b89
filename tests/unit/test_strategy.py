"""How several processes share the work (engine/train/strategy.py, engine/estimate/sharding.py), without starting
a process: what `strategy: auto` chooses and the line that says why, the TrainingArguments of DDP, FSDP and
DeepSpeed, the DeepSpeed config RUN/deepspeed.json for each ZeRO stage and offload, and the memory of one rank."""

from __future__ import annotations

import json

import pytest

from engine.config import RunConfig
from engine.estimate import memory, sharding
from engine.jobs.rundir import RunDir
from engine.train import launch, strategy

LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "tie_word_embeddings": False}
GIB = 2**30


def run_config(tmp_path, method: str = "lora", **distributed) -> RunConfig:
    return RunConfig(model={"name_or_path": "m"}, method={"name": method}, data={"path": "d.json"},
                     output_dir=str(tmp_path / "run"), distributed={"nproc_per_node": 2, **distributed})


def test_auto_chooses_ddp_for_an_adapter_and_says_why(tmp_path) -> None:
    chosen, line = strategy.choose(run_config(tmp_path), LLAMA, 80 * GIB, "cuda")
    assert chosen == "ddp"
    assert line == ("distributed: auto chose DDP in 2 processes: lora trains an adapter, small enough for every "
                    "process to hold the whole model")


def test_auto_keeps_ddp_for_a_full_model_that_fits_one_device(tmp_path) -> None:
    chosen, line = strategy.choose(run_config(tmp_path, "full"), LLAMA, 10_000 * GIB, "cuda")
    assert chosen == "ddp" and "which fits one device's 10000.00 GiB" in line


@pytest.mark.parametrize(("installed", "device", "chosen", "said"), [
    (True, "cuda", "deepspeed", "auto chose DeepSpeed ZeRO-3 in 2 processes"),
    (False, "cuda", "fsdp", "auto chose FSDP in 2 processes"),
    (False, "cpu", "ddp", "only DeepSpeed ZeRO-3 shards it and deepspeed is not installed"),
])
def test_auto_shards_a_full_model_that_does_not_fit_one_device(tmp_path, monkeypatch, installed, device, chosen,
                                                              said) -> None:
    monkeypatch.setattr(strategy, "find_spec", lambda _name: object() if installed else None)
    config = run_config(tmp_path, "full", zero_stage=2)
    found = memory.estimate(config, LLAMA, "gpu")
    capacity = found.total // 2  # a 7B full fine-tune needs about twice what one device has
    assert strategy.choose(config, LLAMA, capacity, device)[0] == chosen
    monkeypatch.setattr(strategy, "capacity", lambda _device, _processes: capacity)
    line = strategy.settle(config, LLAMA, device)
    assert said in line and config.distributed.strategy == chosen
    if chosen != "ddp":  # the sharded figure is each process's: weights, gradients and states halved
        each = float(line.rsplit("about ", 1)[1].split(" GiB")[0]) * GIB
        assert each < found.total * 0.75 and config.distributed.zero_stage == 3


def test_fsdp_on_the_cpu_is_refused_with_the_sentence(tmp_path) -> None:
    with pytest.raises(launch.LaunchError, match="fsdp needs GPUs: .* set distributed.strategy to ddp, or to "
                                                 "deepspeed"):
        strategy.choose(run_config(tmp_path, strategy="fsdp"), LLAMA, GIB, "cpu")
    assert strategy.choose(run_config(tmp_path, strategy="fsdp", fsdp_offload=True), LLAMA, GIB, "cuda") == (
        "fsdp", "distributed: FSDP with CPU offload in 2 process(es), as distributed.strategy says")


def test_ddp_of_an_adapter_does_not_search_for_unused_parameters(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    assert strategy.arguments(run_config(tmp_path, strategy="ddp"), run) == {"ddp_find_unused_parameters": False}
    assert strategy.arguments(run_config(tmp_path, "full", strategy="ddp"), run) == {}  # the Trainer's default
    assert strategy.arguments(run_config(tmp_path, nproc_per_node=1), run) == {}  # one process: no DDP


def test_fsdp_arguments_carry_offload_and_fsdps_own_checkpointing(tmp_path) -> None:
    config = run_config(tmp_path, strategy="fsdp", fsdp_offload=True)
    config.train.gradient_checkpointing = True
    found = strategy.arguments(config, RunDir(tmp_path / "run"))
    assert found["fsdp"] is True and found["activation_checkpointing"] is False
    assert found["fsdp_config"] == {"version": 2, "reshard_after_forward": True, "cpu_offload": True,
                                    "state_dict_type": "FULL_STATE_DICT", "activation_checkpointing": True}


@pytest.mark.parametrize(("stage", "offload"), [(2, False), (2, True), (3, False), (3, True)])
def test_the_deepspeed_config_is_kept_in_the_run_folder_for_each_stage_and_offload(tmp_path, stage, offload):
    config = run_config(tmp_path, strategy="deepspeed", zero_stage=stage, zero_offload=offload)
    found = strategy.arguments(config, RunDir(tmp_path / "run"))
    assert found == {"deepspeed": str(tmp_path / "run" / strategy.DEEPSPEED_JSON)}
    written = json.loads((tmp_path / "run" / "deepspeed.json").read_text(encoding="utf-8"))
    zero = written["zero_optimization"]
    assert zero["stage"] == stage
    assert ("offload_optimizer" in zero) == offload and ("offload_param" in zero) == (offload and stage == 3)
    assert zero.get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)  # whole weights saved
    assert {written[k] for k in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                                 "gradient_clipping")} == {"auto"}  # transformers fills them from the config
    assert written["zero_force_ds_cpu_optimizer"] is False  # the Trainer's optimizer, even offloaded


def test_one_ranks_memory_shares_what_each_strategy_shards(tmp_path) -> None:
    one = memory.MemoryEstimate(device="gpu", tokens=1, longest=1, weights=800, gradients=400, optimizer=1600,
                                activations=100, logits=10, attention=0, overhead=50)
    assert sharding.per_rank(one, "ddp", 4) == one
    fsdp = sharding.per_rank(one, "fsdp", 4)
    assert (fsdp.weights, fsdp.gradients, fsdp.optimizer, fsdp.activations) == (200, 100, 400, 100)
    assert sharding.per_rank(one, "deepspeed", 4, zero_stage=3) == fsdp
    zero2 = sharding.per_rank(one, "deepspeed", 4, zero_stage=2)
    assert (zero2.weights, zero2.gradients, zero2.optimizer) == (800, 100, 400)
    assert sharding.per_rank(one, "deepspeed", 4, zero_stage=2, offload=True).optimizer == 0
    offloaded = sharding.per_rank(one, "fsdp", 4, offload=True)
    assert (offloaded.weights, offloaded.gradients, offloaded.optimizer) == (0, 0, 0)
    assert offloaded.total == 160
    config = run_config(tmp_path, "full", strategy="deepspeed", zero_stage=2, zero_offload=True, nproc_per_node=4)
    assert sharding.of_run(one, config.distributed) == sharding.per_rank(one, "deepspeed", 4, 2, offload=True)


def test_a_sharded_strategy_starts_through_torchrun_even_in_one_process(tmp_path, monkeypatch) -> None:
    config = run_config(tmp_path, strategy="deepspeed", nproc_per_node=1)
    assert launch.several(config)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv(launch.RANK_BODY_ENV, raising=False)
    with pytest.raises(launch.LaunchError, match="deepspeed trains through torchrun, even in one process"):
        launch.check_world(config)


def test_the_chunked_head_is_left_out_where_the_weights_are_sharded(tmp_path) -> None:
    """FSDP and ZeRO-3 shard the output layer: the engine's chunked head runs it outside the model's forward,
    which fails there (ZeRO-3 full fine-tuning on the CPU: an invalid gradient of shape [0])."""
    sharded = [strategy.weights_sharded(run_config(tmp_path, strategy=name, zero_stage=stage))
               for name, stage in (("fsdp", 3), ("deepspeed", 3), ("deepspeed", 2), ("ddp", 3))]
    assert sharded == [True, True, False, False]


def test_weights_are_gathered_only_from_a_model_deepspeed_wrapped() -> None:
    """A checkpoint of the last step is restored without training: DeepSpeed never wrapped the model, whose weights
    are whole (accelerate's gathering would fail on it: no deepspeed_config)."""
    from types import SimpleNamespace

    gathered = SimpleNamespace(get_state_dict=lambda model: {"w": model})
    unwrapped = SimpleNamespace(is_fsdp_enabled=False, is_deepspeed_enabled=True, model_wrapped="engine",
                                accelerator=SimpleNamespace(deepspeed_engine_wrapped=None, **vars(gathered)))
    assert strategy.full_state_dict(unwrapped) is None
    unwrapped.accelerator.deepspeed_engine_wrapped = object()
    assert strategy.full_state_dict(unwrapped) == {"w": "engine"}
    assert strategy.full_state_dict(SimpleNamespace(is_fsdp_enabled=False, is_deepspeed_enabled=False)) is None


def test_each_rank_says_how_much_of_the_weights_it_holds_once_they_are_sharded(tmp_path) -> None:
    """ZeRO-3 keeps a partition of each parameter (ds_tensor of ds_numel elements), FSDP2 a DTensor's local shard,
    4-bit weights packed two to a byte; the line is logged on FSDP and ZeRO-3 only."""
    from types import SimpleNamespace

    import torch

    class Partitioned(torch.nn.Parameter):  # a parameter as DeepSpeed ZeRO-3 leaves it: empty data, a partition
        pass

    zero = Partitioned(torch.empty(0, dtype=torch.uint8), requires_grad=False)
    zero.ds_tensor, zero.ds_numel = torch.empty(1024, dtype=torch.uint8), 2048
    shard = SimpleNamespace(element_size=lambda: 4, numel=lambda: 1000, to_local=lambda: torch.empty(500))
    whole = torch.nn.Parameter(torch.empty(256))  # bf16 would be 2 bytes each: float32 here, 4
    model = SimpleNamespace(parameters=lambda: [zero, shard, whole])
    assert strategy.held_weights(model) == (1024 + 500 * 4 + 256 * 4, 2048 + 1000 * 4 + 256 * 4)
    from engine.train.trainer import sharding_callbacks

    said: list[str] = []
    config = run_config(tmp_path, strategy="deepspeed", zero_stage=3)
    [callback] = sharding_callbacks(config, SimpleNamespace(info=said.append))
    zero.ds_tensor, zero.ds_numel = torch.empty(2**20, dtype=torch.uint8), 2**21  # 1 MiB of 2 MiB
    callback.on_train_begin(None, None, None, model=SimpleNamespace(parameters=lambda: [zero]))
    assert said == ["distributed: each process holds 1.00 MB of the weights' 2.00 MB (DeepSpeed ZeRO-3 over 2 "
                    "process(es))"]
    assert sharding_callbacks(run_config(tmp_path, strategy="deepspeed", zero_stage=2), None) == []
