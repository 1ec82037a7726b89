"""The interface language chosen in the footer's Settings applies to the whole page and stays chosen: an English
browser switches to Chinese, sees the tabs, the upload box and what the server writes (data summary, model info,
trainable count, histogram, the "trained" label, and the engine's own sentence on a file it refuses, with the
Start it refuses) in Chinese, keeps Chinese after a reload and on a new visit from the same browser, then switches
back to English."""

from __future__ import annotations

import pytest

from tests.browser.pages import open_page, pick, shot

pytestmark = pytest.mark.browser

CHINESE_TABS = ("训练", "运行记录", "对话", "导出")


def choose_language(page, language: str) -> None:
    """Pick `language` (as Gradio's Settings list names it) in the footer's Settings; the page reloads in it."""
    page.locator("footer button.settings").click()
    page.locator("input[aria-label='Language']").click()
    page.locator("[role=option]", has_text=language).first.wait_for()
    offered = [option.inner_text().replace("✓", "").strip() for option in page.locator("[role=option]").all()
               if option.is_visible()]
    assert offered == ["English", "简体中文"], offered  # the two languages the page is translated into, not 33
    with page.expect_navigation(timeout=30_000):
        page.locator("[role=option]", has_text=language).first.click()
    page.wait_for_selector("#wb-start")


def expect_chinese_page(page) -> None:
    for label in CHINESE_TABS:
        page.get_by_role("tab", name=label).wait_for()
    upload = page.locator("#wb-upload").inner_text()
    assert "上传数据集文件" in upload and "点击上传" in upload, upload
    page.wait_for_selector("#wb-data-summary:has-text('识别到的格式')")
    page.wait_for_selector("#wb-model-info:has-text('参数量')")
    page.wait_for_selector("#wb-trainable:has-text('可训练参数')")


def refused_start_in_chinese(page, folder) -> None:
    """The engine's own sentence (the dataset inspection's, on an empty file) reaches the Chinese page in Chinese:
    in the data summary and in the toast of the Start it refuses; then the starter dataset is chosen again (the
    form is remembered across reloads)."""
    empty = folder / "empty.json"
    empty.write_text("[]")
    page.locator("#wb-upload input[type=file]").set_input_files(str(empty))
    error = page.wait_for_selector("#wb-data-error:has-text('中没有数据行')").inner_text()
    assert "empty.json 中没有数据行：请至少添加一行。" in error and "add at least" not in error, error
    page.click("#wb-start")
    refused = page.wait_for_selector("[data-testid=toast-body]:has-text('未开始')", timeout=30_000).inner_text()
    assert "empty.json 中没有数据行" in refused and "no rows" not in refused, refused
    pick(page, "#wb-dataset", "samples/identity_alpaca.json")
    page.wait_for_selector("#wb-data-summary:has-text('识别到的格式')")


def test_language_from_settings_applies_and_persists(browser, server, tmp_path):
    page = open_page(browser, server[0], locale="en-US")
    # the first visit inspects the starter dataset and counts parameters in engine processes: slow on 2 busy cores
    page.wait_for_selector("#wb-data-summary:has-text('Detected format')", timeout=180_000)
    page.wait_for_selector("#wb-trainable:has-text('trainable')", timeout=180_000)

    choose_language(page, "简体中文")
    expect_chinese_page(page)
    page.wait_for_selector("#wb-lengths:has-text('行数')")  # axis titles and legend
    histogram = page.locator("#wb-lengths").inner_text()
    assert "截断长度" in histogram and "未超长" in histogram, histogram
    assert "fits" not in histogram and "tokens" not in histogram and "rows" not in histogram, histogram
    example = page.locator("#wb-example").inner_text()
    assert "训练部分" in example and "trained" not in example.lower(), example
    shot(page, "language-zh")

    page.reload()
    page.wait_for_selector("#wb-start")
    expect_chinese_page(page)
    refused_start_in_chinese(page, tmp_path)

    again = page.context.new_page()  # a new visit from the same browser
    again.goto(server[0])
    again.wait_for_selector("#wb-start")
    assert again.get_by_role("tab", name="训练").is_visible()
    again.close()

    choose_language(page, "English")
    for label in ("Train", "Runs", "Chat", "Export"):
        page.get_by_role("tab", name=label).wait_for()
    page.wait_for_selector("#wb-data-summary:has-text('Detected format')")
    page.wait_for_selector("#wb-trainable:has-text('trainable')")
    assert "识别" not in page.locator("#wb-data-summary").inner_text()
    page.context.close()

