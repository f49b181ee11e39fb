"""Negative control: with the ipywidgets extension disabled the same check must fail.

If it passed, the widget tests could pass without a single widget rendering.
"""

import json

import pytest

import labdriver as ld


@pytest.fixture(scope="module")
def lab_without_widgets(browser, site, tmp_path_factory):
    server = ld.LabServer(root=site, home=tmp_path_factory.mktemp("lab-nowidgets"), widgets=False).start()
    yield server
    server.stop()


def test_widget_check_fails_without_the_widget_extension(lab_without_widgets, page, shots):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    nb = ld.NotebookPage(page, lab_without_widgets, "probe.ipynb").open()
    config = json.loads(page.locator("#jupyter-config-data").text_content())
    assert ld.WIDGET_EXTENSION in config["disabledExtensions"]
    nb.run_all()
    nb.wait_done()
    assert nb.prompts() == ["[1]:", "[2]:"]  # the cells ran ...
    assert "VBox(children=" in page.locator(".jp-Notebook .jp-OutputArea-output").last.inner_text()  # ... as text
    with pytest.raises((AssertionError, PlaywrightTimeout)) as failure:
        ld.check_widgets(nb, shots, expect_classes=["probe-slider", "probe-dropdown"], timeout=5_000)
    assert "probe-slider" in str(failure.value)
