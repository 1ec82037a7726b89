"""The Train tab's Devices panel (webui.tabs.train.devices): the GPU list as nvidia-smi gives it (faked here) with
the run using each, or CPU only; the devices and processes fields reach the run's config through the form's one
mapping; and each node's command is the engine's --print-command text (engine.train.launch.printed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.train import launch
from tests.train_tab import train_tab
from webui.forms import fields as ff
from webui.forms import mapping as forms
from webui.jobs.devices import CPU, GpuList, parse_nvidia_smi
from webui.tabs.train import devices as panel

SMI = """index, name, memory.total [MiB], memory.used [MiB]
0, NVIDIA H100 80GB HBM3, 81559 MiB, 1 MiB
1, NVIDIA H100 80GB HBM3, 81559 MiB, 40960 MiB
"""


def english(key: str, **values: object) -> str:
    from webui.i18n import translations

    return translations()["en"][key].format(**values)


def test_the_gpus_are_listed_with_the_run_using_each():
    text = panel.gpu_text(GpuList(parse_nvidia_smi(SMI)), {"GPU 1": "big-run"}, english)
    rows = text.splitlines()
    assert rows[0] == "| GPU | name | memory used / total | in use by |"
    assert rows[2] == "| 0 | NVIDIA H100 80GB HBM3 | 0.0 / 79.6 GiB | free |"
    assert rows[3] == "| 1 | NVIDIA H100 80GB HBM3 | 40.0 / 79.6 GiB | big-run |"
    unknown = panel.gpu_text(GpuList(parse_nvidia_smi("0, GH200, [N/A], [N/A]\n")), {}, english)
    assert unknown.splitlines()[2] == "| 0 | GH200 | ? / ? GiB | free |"


def test_without_a_gpu_the_panel_says_cpu_only():
    assert panel.gpu_text(GpuList(), {}, english).startswith("CPU only: no GPU was found")
    assert panel.gpu_text(GpuList(), {CPU: "demo"}, english).endswith("The CPU is in use by run demo.")
    broken = panel.gpu_text(GpuList(problem="nvidia-smi failed (no driver): the GPUs are not listed."), {}, english)
    assert broken.startswith("nvidia-smi failed (no driver)") and "CPU only" in broken


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    from webui.context import AppContext

    ctx = AppContext.create(tmp_path_factory.mktemp("ws"))
    dataset = ctx.uploads / "d.jsonl"
    dataset.write_text('{"instruction": "hi", "output": "hello"}\n')
    return ctx, train_tab(ctx), dataset


def form(dataset: Path, **changes: object) -> list[object]:
    values = {**forms.defaults(), **{getattr(ff, name.upper()): value for name, value in changes.items()}}
    return ["tiny", str(dataset), [], "auto", "lora", *forms.widget_values(values)]


def test_two_nodes_show_each_nodes_command_from_the_engine(world):
    ctx, tab, dataset = world
    args = form(dataset, devices="cpu", nproc_per_node=2, nnodes=2, master_addr="127.0.0.1", master_port=29611)
    shown = panel.preview(ctx, tab, None, "two-nodes", *args)
    yaml_text = shown[tab.config.yaml]
    assert "devices: cpu" in yaml_text and "nproc_per_node: 2" in yaml_text and "nnodes: 2" in yaml_text
    config_file = shown[tab.config.command].removeprefix("python launch.py train ")
    config = forms.to_config(forms.from_widgets(args[5:]), model="tiny", data_path=str(dataset),
                             output_dir=str(ctx.runs.runs_dir / "two-nodes"))
    commands = shown[tab.devices.commands]
    assert commands["visible"] and commands["value"] == launch.printed(config, [config_file])
    assert "# node 1" in commands["value"] and "--node-rank=1" in commands["value"]
    assert "--master-addr=127.0.0.1" in commands["value"] and "--master-port=29611" in commands["value"]


def test_one_process_shows_no_node_command(world):
    ctx, tab, dataset = world
    shown = panel.preview(ctx, tab, None, "one", *form(dataset))
    assert shown[tab.devices.commands]["visible"] is False and "nproc_per_node: 1" in shown[tab.config.yaml]
    refused = panel.preview(ctx, tab, None, "bad", *form(dataset, nnodes=2))  # no master_addr: the engine's sentence
    # the config is valid (a Slurm script takes node 0's address from the allocation), but torchrun's commands need it
    assert "master_addr is not set" in refused[tab.devices.commands]["value"], refused[tab.devices.commands]
