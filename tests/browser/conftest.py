"""Fixtures for the browser tests: one private JupyterLab, one headless Chromium, a tab per test.

The server serves a temporary folder holding copies of notebooks/*.ipynb (outputs stripped,
so whatever the page shows comes from the run the test starts) and two small probe notebooks
made here, one with working widgets and one whose callback raises: they test the harness.
Screenshots go to tests/browser/screenshots/<test>/ (before/after each widget move, and
failure.png when a test fails); the folder is rebuilt on every run and ignored by git.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # labdriver sits beside us; also under --import-mode=importlib
    sys.path.insert(0, str(HERE))
import labdriver as ld  # noqa: E402
SHOTS = HERE / "screenshots"

PROBE = '''\
out = widgets.Output()
n = widgets.IntSlider(value=3, min=1, max=10, description="n", continuous_update=False)
colour = widgets.Dropdown(options=["C0", "C1", "C2"], value="C0", description="colour")
n.add_class("probe-slider")
colour.add_class("probe-dropdown")

def redraw(_=None):
    {fault}fig = Figure(figsize=(3, 2))
    fig.subplots().plot(range(n.value + 1), color=colour.value)
    with out:
        out.clear_output(wait=True)
        print(f"n = {{n.value}}, colour = {{colour.value}}")
        display(fig)

n.observe(redraw, names="value")
colour.observe(redraw, names="value")
redraw()
widgets.VBox([widgets.HBox([n, colour]), out])'''


def probe_notebook(broken=False):
    """A notebook with a slider and a dropdown redrawing a figure and a printed line;
    `broken`: the callback raises on every change after the first draw (as a buggy notebook would)."""
    fault = 'if _ is not None:\n        raise ValueError("broken callback")\n    ' if broken else ""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Widget probe"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport ipywidgets as widgets\n"
                                  "from IPython.display import display\nfrom matplotlib.figure import Figure"),
        nbformat.v4.new_code_cell(PROBE.format(fault=fault)),
    ]
    return nbformat.writes(nb)


def pytest_collection_modifyitems(items):
    for item in items:  # `pytest -m "not browser"` leaves them out
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "call":
        item.browser_failed = report.failed
        if report.failed:  # point the CI log at the pictures
            report.sections.append(("browser screenshots", f"{shot_dir(item.name)}/ (failure.png, before/after)"))


def shot_dir(test_name):
    return SHOTS / "".join(c if c.isalnum() or c in "-_." else "_" for c in test_name)


@pytest.fixture(scope="session")
def browser():
    reason = ld.browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=ld.CHROMIUM, args=ld.LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The folder the server shows: stripped copies of the notebooks, the course's helpers beside
    them (a link, as notebooks/student/ has), and the probes."""
    root = tmp_path_factory.mktemp("site")
    (root / "course").symlink_to(ld.NOTEBOOKS / "course", target_is_directory=True)
    for src in sorted(ld.NOTEBOOKS.glob("*.ipynb")):
        ld.strip_outputs(src, root / src.name)
    (root / "probe.ipynb").write_text(probe_notebook())
    (root / "probe_broken.ipynb").write_text(probe_notebook(broken=True))
    return root


@pytest.fixture(scope="session")
def lab(browser, site, tmp_path_factory):
    server = ld.LabServer(root=site, home=tmp_path_factory.mktemp("lab")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def screenshots():
    return ld.reset_dir(SHOTS)


@pytest.fixture
def shots(request, screenshots):
    return shot_dir(request.node.name)


def _shot_if_failed(request, pg, shots):
    if getattr(request.node, "browser_failed", False):
        shots.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=shots / "failure.png", full_page=True)
        except Exception:  # the page may have gone with the failure; the test's message says why
            pass


def _new_tab(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    return context, pg


@pytest.fixture
def page(request, browser, runs, shots):
    """A fresh tab (own context); its screenshot goes to <shots>/failure.png if the test fails.
    (It asks for `runs` so that the notebooks compute while the other browser tests run.)"""
    context, pg = _new_tab(browser)
    yield pg
    _shot_if_failed(request, pg, shots)
    context.close()


@pytest.fixture(scope="session")
def runs(request, browser, lab):
    """The notebooks this session's notebook tests check, each opened in its own tab with
    Run All Cells clicked, all at the start: their kernels share the cores instead of queueing,
    and compute while the probe tests run."""
    names = dict.fromkeys(item.callspec.params["notebook"] for item in request.session.items
                          if "notebook" in getattr(getattr(item, "callspec", None), "params", {}))
    tabs = {name: _new_tab(browser) for name in names}
    started = {name: ld.NotebookPage(pg, lab, name).goto() for name, (_, pg) in tabs.items()}
    for nb in started.values():
        nb.wait_ready(timeout=180_000)
        nb.run_all()
    yield started
    for context, _ in tabs.values():
        context.close()


@pytest.fixture
def notebook(request, runs, shots):
    """The notebook tab for `request.param` (indirect parametrisation), Run All already clicked."""
    nb = runs[request.param]
    yield nb
    _shot_if_failed(request, nb.page, shots)


# ---------------------------------------------------------------- the built website (test_site_browser, test_slides_browser)
@pytest.fixture(scope="session")
def book(tmp_path_factory):
    """The course's website built now (python -m experiments.site build) into a temporary folder:
    the html folder, and the build's (wall, CPU) seconds; CPU counts this process and the
    jupyter-book subprocess (the wall time depends on what else shares the cores)."""
    import resource
    import time

    from experiments import site as site_builder

    def cpu():
        return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for f in ("ru_utime", "ru_stime"))

    t0, c0 = time.perf_counter(), cpu()
    html = site_builder.build(out=tmp_path_factory.mktemp("book"))
    return html, (time.perf_counter() - t0, cpu() - c0)


@pytest.fixture(scope="session")
def book_server(book):
    """http://127.0.0.1:PORT/ serving the built site's folder (and nothing else)."""
    import sitecheck

    with sitecheck.serve(book[0]) as url:
        yield url
