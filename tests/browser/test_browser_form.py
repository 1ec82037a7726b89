"""The Train tab's form in a real browser: usable as soon as the page opens (trainable count from config.json,
dataset inspections cached for the next visitor), method options that say what the run will do and are never
squeezed, an offline hub id that fails at once without showing another model's figures, and a config-preview
command that trains when pasted. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.browser.pages import ROOT, open_page, pick, set_number, shot, wait_for_yaml

pytestmark = pytest.mark.browser
FRESH_ENGINE_ANSWERS = True  # the first visitor waits for the inspection's engine process (tests/browser/conftest.py)

COUNT_SHOWN = "() => /trainable.*\\d%/.test(document.querySelector('#wb-trainable')?.innerText || '')"
SUMMARY_SHOWN = "() => /\\d+ rows/.test(document.querySelector('#wb-data-summary')?.innerText || '')"
HUB_ID = "someone/model-not-in-any-cache"


def open_config_panel(page) -> None:
    """Opens the config preview's panel, unless a test before left it open (the page they share)."""
    if not page.locator("#wb-command").is_visible():
        page.get_by_text("Config preview, save and load").click()
    page.wait_for_selector("#wb-command", state="visible")


def preview_command(page, config_name: str) -> str:
    """The command beside the config preview, once it names `config_name`'s file."""
    page.get_by_label("Config name").fill(config_name)
    page.wait_for_function(f"() => document.querySelector('#wb-command textarea').value.includes('/{config_name}')")
    return page.locator("#wb-command textarea").input_value()


def test_page_is_usable_at_once_and_inspections_are_shared(browser, server):
    url, _ = server
    first = open_page(browser, url)
    began = time.monotonic()
    first.wait_for_function(COUNT_SHOWN, timeout=15_000, polling=100)  # counted from config.json: no process
    count_s = time.monotonic() - began
    first.wait_for_function(SUMMARY_SHOWN, timeout=180_000, polling=100)  # the first visitor waits for one process
    second = open_page(browser, url)
    began = time.monotonic()
    second.wait_for_function(SUMMARY_SHOWN, timeout=15_000, polling=100)  # the first visitor's answer, cached
    second.wait_for_function(COUNT_SHOWN, timeout=15_000, polling=100)
    print(f"trainable count {count_s:.1f} s after the page; second visitor's summary {time.monotonic() - began:.1f} s")
    assert second.locator("#wb-data-summary").inner_text() == first.locator("#wb-data-summary").inner_text()
    first.context.close()
    second.context.close()


def previewed_config(page, method: str, timeout: float = 60) -> dict:
    """The config the preview's command would run, once it is `method`'s (read from the file the command names)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command = page.locator("#wb-command textarea").input_value()
        if command:
            config = yaml.safe_load(Path(shlex.split(command)[-1]).read_text(encoding="utf-8"))
            if config["method"]["name"] == method:
                return config
        page.wait_for_timeout(200)
    raise AssertionError(f"the config preview's command never named a {method} config")


def bits_shown(page) -> tuple[list[str], str]:
    """The bits radio's offered labels and the checked one."""
    radio = page.locator("#f-method-bits")
    labels = [label.inner_text().strip() for label in radio.locator("label").all()]
    checked = radio.locator("label:has(input:checked)").inner_text().strip()
    return labels, checked


def squeezed_options(page) -> list[str]:
    """Visible method options narrower than a readable column (their help text would wrap a word a line)."""
    return page.evaluate("""() => [...document.querySelectorAll('[id^=f-method-]')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width < 180)
        .map(e => e.id + ':' + Math.round(e.getBoundingClientRect().width))""")


def test_offline_hub_id_fails_at_once_without_another_models_figures(page):
    page.wait_for_function(COUNT_SHOWN, polling=100)  # the demo model's figures
    page.evaluate("""() => { window.__counts = [];
        const box = document.querySelector('#wb-trainable');
        new MutationObserver(() => window.__counts.push(box.innerText))
            .observe(box, {subtree: true, childList: true, characterData: true}); }""")
    box = page.locator("#wb-model input")
    box.click()
    box.fill(HUB_ID)
    box.press("Enter")
    began = time.monotonic()
    page.wait_for_selector("#wb-trainable:has-text('cannot be reached')", timeout=10_000)
    page.wait_for_selector("#wb-model-info:has-text('cannot be reached')", timeout=10_000)
    took = time.monotonic() - began
    page.wait_for_timeout(1500)  # a late answer for the demo model would land now
    counts = page.evaluate("window.__counts")
    assert not any("%" in text for text in counts), counts  # never the demo model's figures under the hub id
    assert "cannot be reached" in page.locator("#wb-trainable").inner_text()
    shot(page, "form-offline-hub-id")
    assert took < 10


def test_a_model_typed_once_runs_each_of_its_handlers_once(page):
    """A model typed into the box runs its handlers (model summary, dataset inspection, count, preview, estimate)
    once each. Before, Gradio's page sent the trigger again whenever a deferred run of one of its two queued
    always_last handlers ended, and the whole set ran again every 0.8 s, sometimes without end
    (tests/unit/test_page_events.py, webui.components.wiring.newest)."""
    page.wait_for_function(COUNT_SHOWN, polling=100)
    page.wait_for_timeout(3000)  # the opening's events are answered
    model_id = page.evaluate("""() => (window.gradio_config.components
        .find(c => c.props && c.props.elem_id === 'wb-model') || {}).id""")
    assert isinstance(model_id, int), model_id
    sent: list[int] = []

    def record(request) -> None:
        if request.method == "POST" and ("/queue/join" in request.url or "/run/predict" in request.url):
            body = json.loads(request.post_data or "{}")
            if body.get("trigger_id") == model_id:
                sent.append(body.get("fn_index"))

    page.on("request", record)
    box = page.locator("#wb-model input")
    box.click()
    box.fill(HUB_ID)
    box.press("Enter")
    page.wait_for_selector("#wb-trainable:has-text('cannot be reached')", timeout=30_000)
    page.wait_for_timeout(6000)  # the looping page had sent the set again twice by now
    assert len(sent) >= 3, sent  # the summary, the inspection, the count (and the preview, the estimate)
    assert len(sent) == len(set(sent)), sorted(sent)


def test_start_refuses_at_once_what_the_page_knows_will_fail(page, server, tmp_path):
    """An empty dataset the inspection has rejected, then a hub id that cannot be reached: Start says the page's
    sentence at once and writes no run (it used to queue one that failed with the same sentence minutes later)."""
    _, workspace = server
    runs_before = set((workspace / "runs").glob("*/config.yaml"))  # other tests of this module ran runs
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    page.locator("#wb-upload input[type=file]").set_input_files(str(empty))
    page.wait_for_selector("#wb-data-error:has-text('empty')")
    page.click("#wb-start")
    refused = page.wait_for_selector("[data-testid=toast-body]:has-text('Not started')", timeout=15_000)
    assert "empty.json" in refused.inner_text() and "empty" in refused.inner_text().split("empty.json", 1)[1]
    box = page.locator("#wb-model input")
    box.click()
    box.fill(HUB_ID)
    box.press("Enter")
    page.wait_for_selector("#wb-model-info:has-text('cannot be reached')", timeout=10_000)
    page.click("#wb-start")
    page.wait_for_selector(f"[data-testid=toast-body]:has-text('{HUB_ID}')", timeout=15_000)
    assert set((workspace / "runs").glob("*/config.yaml")) == runs_before, "a refused Start must write no run"
    shot(page, "form-start-refused")


def test_the_memory_verdict_changes_when_the_batch_grows(page, tmp_path):
    """Issue 26: the Train tab's estimate before Start says a batch fits this machine and that a batch of 65,536 rows
    will not; the Compare tab shows a verdict per method. The estimate counts the rows the dataset really has (their
    measured lengths): the demo's 40 short rows make the same small batch whatever batch_size says, so the test
    uploads 800 rows longer than the demo model's 512 positions (a batch of them all: about 45 GiB)."""
    words = " ".join(f"w{i % 50}" for i in range(700))
    rows = tmp_path / "long_rows.jsonl"
    rows.write_text("\n".join(json.dumps({"instruction": f"Row {n}", "input": "", "output": words})
                              for n in range(800)), encoding="utf-8")
    page.locator("#wb-upload input[type=file]").set_input_files(str(rows))
    page.wait_for_selector("#wb-data-summary:has-text('800')", timeout=120_000)
    set_number(page, "f-train-cutoff-len", "512")
    verdict = "([word]) => (document.querySelector('#wb-estimate')?.innerText || '').includes('free: ' + word)"
    page.wait_for_function(verdict, arg=["fits"], timeout=60_000, polling=100)
    # estimated again once the inspection has measured the rows at this cutoff: the measured rows, cut at it
    page.wait_for_selector("#wb-estimate:has-text(\"the largest batch of the data's 800 rows\")", timeout=60_000)
    assert "the longest 512 tokens" in page.locator("#wb-estimate").inner_text()
    set_number(page, "f-train-batch-size", "65536")
    page.wait_for_function(verdict, arg=["will not fit"], timeout=60_000, polling=100)
    shot(page, "form-estimate-will-not-fit")
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_function("() => document.querySelectorAll('#wb-compare-estimate tr[data-verdict]').length >= 3",
                           timeout=30_000, polling=100)
    assert "free" in page.locator("#wb-compare-estimate").inner_text()


# The tests below share one page (the fixture shared_page), each going on from where the one before left it:
# the method options end on LoRA, as the page opens; the pasted command trains what the form then says (2 steps);
# the kept form is IA3 and 7 steps after the reload; the Devices panel comes last (its 2 nodes would make the pasted
# command a distributed run).


def test_method_options_show_what_the_run_does(shared_page):
    page = shared_page  # the first of the shared page's tests: the page as it opens
    open_config_panel(page)
    assert bits_shown(page)[1] == "16-bit"  # lora, as the page opens
    for method in ("qlora", "dora", "prefix", "lora"):
        pick(page, "#wb-method", method)
        page.wait_for_function("([id, shown]) => (document.getElementById(id)?.offsetParent != null) === shown",
                               arg=["f-method-bits", method != "prefix"])
        if method == "qlora":
            page.wait_for_selector("#f-method-bits label:has(input:checked):has-text('4-bit')", timeout=20_000)
            labels, checked = bits_shown(page)
            assert "16-bit" not in labels and checked == "4-bit", (labels, checked)  # qlora loads 4-bit
            shot(page, "form-qlora")
        assert squeezed_options(page) == [], method
        bits = previewed_config(page, method)["method"]["bits"]
        if method != "prefix":
            assert bits_shown(page)[1] == f"{bits or 16}-bit", (method, bits)  # the radio says what the run loads
        else:
            assert bits is None
    # switching methods never sent a bits value the radio no longer offers ("... not in the list of choices")
    assert page.locator("[data-testid=toast-body]").all_inner_texts() == []


def test_config_preview_command_trains_when_pasted(shared_page, server):
    page = shared_page  # LoRA, as test_method_options left it
    url, workspace = server
    page.locator("#f-ui-stop-by label", has_text="steps").click()
    set_number(page, "f-train-max-steps", "2")
    open_config_panel(page)
    # a run name typed for Start names the config the preview shows, its output_dir and its command's file
    page.get_by_label("Run name (optional)").fill("named-run")
    page.wait_for_function("() => document.querySelector('#wb-command textarea').value.includes('/named-run')")
    wait_for_yaml(page, "runs/named-run")
    page.get_by_label("Run name (optional)").fill("")
    command = preview_command(page, "pasted-run")
    wait_for_yaml(page, "max_steps: 2")
    command = page.locator("#wb-command textarea").input_value()
    argv = shlex.split(command)
    assert argv[:3] == ["python", "launch.py", "train"], command
    done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    run = workspace / "runs" / "pasted-run"
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    assert (run / "adapter" / "adapter_model.safetensors").is_file()


def test_the_form_comes_back_as_it_was_left_after_a_reload(shared_page):
    """A user chose IA3 and 7 steps, reloaded (or reopened the browser), and pressed Start: the form must still say
    IA3 and 7 steps, in its widgets and in the YAML Start would train, not the demo's LoRA defaults."""
    page = shared_page  # LoRA and 2 steps, as test_config_preview_command_trains_when_pasted left it
    open_config_panel(page)
    pick(page, "#wb-method", "ia3")
    page.locator("#f-ui-stop-by label", has_text="steps").click()
    set_number(page, "f-train-max-steps", "7")
    wait_for_yaml(page, "max_steps: 7", "name: ia3")
    page.reload()
    page.wait_for_selector("#wb-start")
    open_config_panel(page)
    config = previewed_config(page, "ia3")
    assert config["train"]["max_steps"] == 7, config["train"]
    assert page.locator("#wb-method input").input_value() == "ia3"
    assert page.locator("#f-train-max-steps input[type=number]").first.input_value() == "7"
    # no starting run is the dropdown's "none" entry (the kept form's None left the box empty)
    assert page.locator("#f-model-adapter input").input_value() == "none: start from the base"
    assert page.locator("[data-testid=toast-body]").all_inner_texts() == []


NODE_COMMANDS = "([text]) => (document.querySelector('#wb-node-commands textarea')?.value || '').includes(text)"


def test_the_devices_panel_sets_cpu_processes_and_shows_each_nodes_command(shared_page):
    """Issue 27: the Devices panel says CPU only on this machine, 2 processes on the CPU reach the YAML preview, and
    with 2 nodes the panel shows the command of each node (the engine's --print-command text)."""
    page = shared_page  # IA3 and 7 steps, as test_the_form_comes_back_as_it_was_left_after_a_reload left it
    open_config_panel(page)
    page.locator("#wb-devices .label-wrap").first.click()
    page.wait_for_selector("#wb-gpus:has-text('CPU only')", timeout=15_000)
    pick(page, "#f-devices", "cpu")
    set_number(page, "f-distributed-nproc-per-node", "2")
    wait_for_yaml(page, "devices: cpu", "nproc_per_node: 2")
    set_number(page, "f-distributed-nnodes", "2")
    address = page.locator("#f-distributed-master-addr").locator("input, textarea").first
    address.fill("127.0.0.1")
    address.press("Tab")
    wait_for_yaml(page, "nnodes: 2", "master_addr: 127.0.0.1")
    page.wait_for_function(NODE_COMMANDS, arg=["--node-rank=1"], timeout=15_000, polling=100)
    commands = page.locator("#wb-node-commands textarea").input_value()
    assert "# node 0 (keeps the run folder)" in commands and "# node 1" in commands, commands
    assert commands.count("torch.distributed.run --nproc-per-node=2") == 2 and "--master-addr=127.0.0.1" in commands
    assert "CUDA_VISIBLE_DEVICES=''" in commands  # devices cpu: the engine's command hides the GPUs
    page.locator("#wb-devices").scroll_into_view_if_needed()
    shot(page, "devices")
