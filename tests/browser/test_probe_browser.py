"""The harness on a small notebook made for it: widgets that work pass, a callback that raises fails."""

import pytest

import labdriver as ld


def test_probe_widgets_redraw_when_moved(lab, page, shots):
    nb = ld.NotebookPage(page, lab, "probe.ipynb").open()
    assert nb.prompts() == ["[ ]:", "[ ]:"]
    nb.run_all()
    nb.wait_done()
    assert nb.prompts() == ["[1]:", "[2]:"]
    assert nb.errors() == []
    out = page.locator(".jp-Notebook .widget-output")
    assert "n = 3, colour = C0" in out.inner_text()

    moved = ld.check_widgets(nb, shots, expect_classes=["probe-slider", "probe-dropdown"])
    # slider: keyboard on the handle moved n from 3 to 4; dropdown: C0 -> C1; the printed line says so
    assert [(m.kind, m.classes, m.before, m.after) for m in moved] == [
        ("widget-slider", ["probe-slider"], "3", "4"), ("widget-dropdown", ["probe-dropdown"], "C0", "C1")]
    assert "n = 4, colour = C1" in out.inner_text()

    # the readout takes typed values too: click, select all, type, Enter
    readout = page.locator(".probe-slider .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("7")
    page.keyboard.press("Enter")
    page.wait_for_function("o => o.innerText.includes('n = 7, colour = C1')", arg=out.element_handle())
    assert page.locator(".probe-slider .noUi-handle").get_attribute("aria-valuenow").startswith("7")
    assert nb.errors() == []


def test_a_callback_that_raises_is_caught(lab, page, shots):
    """nbval passes this notebook (the error only happens on a move); the browser check must not."""
    nb = ld.NotebookPage(page, lab, "probe_broken.ipynb").open()
    nb.run_all()
    nb.wait_done()
    assert nb.errors() == []  # the first draw works
    with pytest.raises(AssertionError, match="nothing it drives changed"):
        ld.check_widgets(nb, shots, expect_classes=["probe-slider"], timeout=5_000)
