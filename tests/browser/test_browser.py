"""The whole job in a real browser (headless Chromium from Debian, driven by Playwright): upload a
dataset, train LoRA on the bundled demo model, watch progress and the loss curve, chat with the result (streamed),
export it, download the zip and load the model from it. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.browser.pages import ROOT, open_page, pick, set_number, shot

pytestmark = pytest.mark.browser

ROWS = [("Who are you?", "I am the workbench assistant."), ("What is two plus two?", "Two plus two is four."),
        ("What is the capital of France?", "Paris is the capital of France."),
        ("Say hello.", "Hello world!")] * 4


def write_dataset(path: Path) -> Path:
    path.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}) + "\n" for q, a in ROWS))
    return path


def test_train_chat_export_in_browser(page, server, tmp_path):
    url, workspace = server
    model_dir = ROOT / "assets" / "models" / "workbench-demo-5m"  # the bundled model the page starts with
    pick(page, "#wb-model", str(model_dir))
    page.wait_for_selector("#wb-model-info:has-text('LlamaForCausalLM')")

    page.wait_for_selector("#wb-data-summary:has-text('40')")  # the starter identity set, shown as the page opens
    page.wait_for_selector("#wb-trainable:has-text('trainable')")
    page.locator("#wb-upload input[type=file]").set_input_files(str(write_dataset(tmp_path / "facts.jsonl")))
    # the page opened with the starter set (40 rows); the upload replaces its summary
    page.wait_for_function("() => /alpaca/.test(document.querySelector('#wb-data-summary').innerText)"
                           " && /\\b16\\b/.test(document.querySelector('#wb-data-summary').innerText)")
    page.wait_for_selector("#wb-example")
    shot(page, "01-dataset")

    page.locator("#f-ui-stop-by label", has_text="steps").click()
    set_number(page, "f-train-max-steps", "40")  # the starting form's learning rate and batch size
    page.wait_for_selector("#wb-trainable:has-text('trainable')")
    shot(page, "02-configured")

    page.click("#wb-start")
    page.wait_for_selector("#wb-progress [data-state='training']", timeout=120_000)
    page.wait_for_function("() => document.querySelector('#wb-log textarea').value.includes('loss=')")
    shot(page, "03-training")
    page.wait_for_selector("#wb-progress [data-state='completed']", timeout=180_000)
    assert page.locator("#wb-progress .wb-step").inner_text() == "40"
    assert page.locator("#wb-loss canvas, #wb-loss svg").count() > 0
    # the log, longer than its box, shows its newest lines (Gradio's autoscroll left it at the top)
    page.wait_for_function("""() => { const box = document.querySelector('#wb-log textarea');
        return box.value.includes('completed') && box.scrollHeight > box.clientHeight + 100
            && box.scrollTop + box.clientHeight >= box.scrollHeight - 8; }""", timeout=10_000)
    shot(page, "04-completed", readme="train")
    run_name = page.locator("#wb-progress b").first.inner_text()

    page.get_by_role("tab", name="Runs").click()
    page.wait_for_selector(f"#wb-runs:has-text('{run_name}')")
    pick(page, "#wb-runs-select", run_name)
    shot(page, "05-runs", readme="runs")

    page.get_by_role("tab", name="Chat").click()
    pick(page, "#wb-chat-run", run_name)
    page.click("#wb-chat-load")
    # loaded, naming the run (not the worker's slot "tuned"); "Loaded" alone also matches "Loading … once it is loaded"
    page.wait_for_selector(f"#wb-chat-status:has-text('adapters: {run_name}')", timeout=120_000)
    page.locator("#wb-chat-sampling").get_by_text("Sampling").click()
    set_number(page, "wb-chat-max-new-tokens", "48")
    set_number(page, "wb-chat-temperature", "0")  # greedy
    page.locator("#wb-side-by-side input").check()
    page.wait_for_selector("#wb-chat-base", state="visible")
    page.evaluate("""() => { window.__lengths = [];
        const box = document.querySelector('#wb-chat-tuned');
        new MutationObserver(() => window.__lengths.push(box.innerText.length))
            .observe(box, {subtree: true, childList: true, characterData: true}); }""")
    page.locator("#wb-chat-msg textarea").fill("Who are you?")
    page.click("#wb-chat-send")
    page.wait_for_function("() => document.querySelector('#wb-chat-base [data-testid=bot]')?.innerText.trim()",
                           timeout=60_000)
    page.wait_for_selector("#wb-chat-send:not([disabled])")
    page.wait_for_timeout(500)
    lengths = page.evaluate("window.__lengths")
    assert len(set(lengths)) >= 3, lengths  # the reply grew in several steps: it was streamed
    shot(page, "06-chat", readme="chat")

    page.get_by_role("tab", name="Export").click()
    pick(page, "#wb-export-run", run_name)
    page.click("#wb-export-start")
    page.wait_for_selector("#wb-dl-merged", state="visible", timeout=180_000)
    shot(page, "07-export", readme="export")
    with page.expect_download() as download_info:
        page.click("#wb-dl-merged")
    zip_path = tmp_path / "merged.zip"
    download_info.value.save_as(zip_path)
    assert "/exports/" in download_info.value.url  # served from the export's own folder...
    assert not any((workspace / ".gradio").rglob("*.zip"))  # ...with no copy in Gradio's cache

    # Nothing outside the workspace can be fetched through the page's file route.
    for crafted in ("/etc/passwd", str(ROOT / "launch.py"), f"{workspace}/../secret"):
        assert page.request.get(f"{url}/gradio_api/file={crafted}").status == 403
    assert (workspace / "uploads" / "facts.jsonl").is_file()  # the upload is stored once, in the workspace:
    assert not any((workspace / ".gradio").rglob("facts.jsonl"))  # moved out of Gradio's upload cache

    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path / "merged")
    config = next((tmp_path / "merged").rglob("config.json")).parent
    from transformers import AutoConfig, AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(config)
    assert model.config.num_hidden_layers == AutoConfig.from_pretrained(model_dir).num_hidden_layers


def test_broken_file_shows_one_sentence(page, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "output": "b"}\n{not json\n')
    page.locator("#wb-upload input[type=file]").set_input_files(str(broken))
    error = page.wait_for_selector("#wb-data-error")
    text = error.inner_text().strip()
    assert "line 2" in text and text.count(". ") == 0 and "\n" not in text
    assert not page.locator("#wb-example").is_visible()
    shot(page, "08-broken-file")


def test_chinese_interface(browser, server):
    page = open_page(browser, server[0], locale="zh-CN")
    context = page.context
    for label in ("训练", "运行记录", "对话", "导出"):
        assert page.get_by_role("tab", name=label).is_visible()
    assert "开始训练" in page.locator("#wb-start").inner_text()
    stop_by = page.locator("#f-ui-stop-by").inner_text()  # the values stay epochs/steps, the labels are Chinese
    assert "轮数" in stop_by and "步数" in stop_by, stop_by
    page.wait_for_selector("#wb-loss:has-text('损失')")  # the plot's axis titles too
    page.wait_for_selector("#wb-example")  # the starter dataset is inspected as the page opens
    page.wait_for_timeout(1000)
    shot(page, "09-chinese", readme="train-zh")

    page.get_by_role("tab", name="运行记录").click()
    page.wait_for_selector("#wb-runs:has-text('状态')")  # column headers come in the visitor's language
    assert "base model" not in page.locator("#wb-runs").inner_text()
    shot(page, "10-chinese-runs")

    page.get_by_role("tab", name="对话").click()
    # the first test of this module left its run loaded, which the page shows chosen: unload it, then a fresh page
    # has nothing chosen
    page.get_by_role("button", name="卸载", exact=True).click()
    page.wait_for_selector("#wb-chat-status:has-text('已卸载')")
    assert "Unloaded" not in page.locator("#wb-chat-status").inner_text()
    page.reload()
    page.get_by_role("tab", name="对话").click()
    page.get_by_role("button", name="加载", exact=True).click()  # nothing chosen: the error is Chinese too
    page.get_by_text("请先选择一个已完成的运行或一个适配器文件夹").first.wait_for()
    shot(page, "11-chinese-chat")
    context.close()
