"""Drive JupyterLab in headless Chromium the way a student would: open, Run All, move widgets.

Three pieces, top to bottom:
  LabServer      - a private JupyterLab on 127.0.0.1 (own config/data/runtime/settings dirs,
                   fixed token, nothing that calls the network, optionally without ipywidgets)
  NotebookPage   - one notebook in one browser tab: open, wait for the kernel, Run All, read errors
  check_widgets  - find every control the notebook shows, move it, and assert that what the
                   student sees (figure, printed text, label) changed and no cell shows an error

Pitfalls met on this machine (root, news toasts, kernel readiness, Chromium's own network
lookups) are handled as recorded in shared/BROWSER_TESTS.md.
"""

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CHROMIUM = os.environ.get("HAMLIB_CHROMIUM", "/usr/bin/chromium")
TOKEN = "hamlib-browser-tests"
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"

# Playwright adds --headless and a temporary profile itself; these stop every outside lookup.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

# JupyterLab user settings: no news/update toasts, every cell in the DOM (no windowing),
# no autosave (the tests never write the notebooks back).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def browser_missing():
    """Why the browser tests cannot run here (a sentence), or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set HAMLIB_CHROMIUM)"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strip_outputs(src: Path, dst: Path):
    """Copy a notebook without its stored outputs, so every prompt starts as [ ] and
    every figure on the page afterwards comes from this run."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    dst.write_text(json.dumps(nb, indent=1))


@dataclass
class LabServer:
    """`jupyter lab` serving `root` from this Python environment, isolated under `home`."""

    root: Path
    home: Path
    widgets: bool = True
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=90):
        dirs = {k: self.home / k.lower() for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                                                   "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        for name, value in LAB_SETTINGS.items():
            f = dirs["JUPYTERLAB_SETTINGS_DIR"] / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value))
        if not self.widgets:  # what `jupyter labextension disable` writes, in the private config dir
            (dirs["JUPYTER_CONFIG_DIR"] / "labconfig").mkdir(exist_ok=True)
            (dirs["JUPYTER_CONFIG_DIR"] / "labconfig" / "page_config.json").write_text(
                json.dumps({"disabledExtensions": {WIDGET_EXTENSION: True}}))
        env = {**os.environ, **{k: str(v) for k, v in dirs.items()},
               "HAMLIB_FULL": "0", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1",
               "HAMLIB_CHECKPOINTS": str(NOTEBOOKS.parent / "data" / "checkpoints")}  # the copies live elsewhere
        env.pop("MPLBACKEND", None)  # the kernel picks the inline backend, as for a student
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
               "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
               f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={TOKEN}",
               "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.news_url=None"]
        self.log = self.home / "server.log"
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.root, stdin=subprocess.DEVNULL,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer on {self.url} within {timeout} s:\n{self.log_tail()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the server shuts its kernels down
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


# --- one notebook in one tab -------------------------------------------------------------

KERNEL_IDLE = "Python 3 (ipykernel) | Idle"
EXCEPTION_LINE = re.compile(r"^\w*(Error|Exception)\b.*:", re.M)  # e.g. "ValueError: rank must be ..."

# Runs in the page: every code cell's prompt, e.g. ["[1]:", "[*]:", "[ ]:"].
JS_PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
                  .map(p => p.textContent.trim())"""


_WORKSPACES = itertools.count()


class NotebookPage:
    def __init__(self, page, server, name):
        self.page, self.server, self.name = page, server, name

    def open(self, timeout=90_000):
        return self.goto().wait_ready(timeout)

    def goto(self):
        """Load the page (without waiting for the kernel: several tabs can start at once)."""
        # a fresh named workspace: JupyterLab would otherwise reopen the notebooks of earlier tabs
        workspace = re.sub(r"\W", "-", self.name) + f"-{next(_WORKSPACES)}"
        self.page.goto(f"{self.server.url}/lab/workspaces/{workspace}/tree/{self.name}?token={TOKEN}",
                       wait_until="commit")
        return self

    def wait_ready(self, timeout=90_000):
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout)
        self.wait_idle(timeout)  # the indicator says idle before a kernel exists; this text needs one
        return self

    def wait_idle(self, timeout=60_000):
        self.page.get_by_text(KERNEL_IDLE, exact=True).wait_for(timeout=timeout)

    def run_all(self):
        """Run menu -> Run All Cells (JupyterLab 4 has no default shortcut for it)."""
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    def wait_done(self, timeout=300_000):
        """Every code cell has an execution count and the kernel is idle."""
        self.page.wait_for_function(
            f"() => {{ const p = ({JS_PROMPTS})(); return p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t)); }}",
            timeout=timeout, polling=500)
        self.wait_idle(timeout)

    def prompts(self):
        return self.page.evaluate(JS_PROMPTS)

    def errors(self):
        """Texts of the outputs that show an error: a traceback or an exception line on stderr
        (how JupyterLab renders an error output too), or a widget that failed to display."""
        stderr = self.page.locator(
            '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
        shown = self.page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
        bad = [t for t in stderr if "Traceback" in t or EXCEPTION_LINE.search(t)]
        bad += [t for t in shown if "Error displaying widget" in t]
        return sorted({t.strip()[:3000] for t in bad})


# --- the widgets -------------------------------------------------------------------------

# ipywidgets' controls, by the class ipywidgets gives their top element.
CONTROLS = ".jp-Notebook .jp-Cell-outputArea :is(.widget-slider, .widget-dropdown, .widget-checkbox, " \
           ".widget-toggle-buttons, .widget-radio, .widget-text, button.widget-button)"

# Runs in the page on a control: its kind, its author-given classes, and a signature of what
# it drives - the images and texts of the nearest widget box holding an Output widget (else
# of the cell's output area), the controls themselves (readouts, labels) left out.
JS_DESCRIBE = """el => {
    const builtin = /^(widget-|jupyter-|lm-|p-|jp-|mod-)/;
    const kinds = ['widget-slider', 'widget-dropdown', 'widget-checkbox', 'widget-toggle-buttons',
                   'widget-radio', 'widget-text', 'widget-button'];
    let region = null;
    for (let a = el.parentElement; a && !region; a = a.parentElement) {
        if (a.classList.contains('jp-Cell-outputArea')) region = a;
        else if (a.classList.contains('widget-box') && a.querySelector('.widget-output')) region = a;
    }
    const parts = [];
    for (const n of region.querySelectorAll('img, .jp-RenderedText, .jp-RenderedHTMLCommon, '
                                            + '.widget-html-content, .widget-label-basic')) {
        if (n.closest('.widget-slider, .widget-dropdown, .widget-checkbox, .widget-toggle-buttons, '
                      + '.widget-radio, .widget-text')) continue;
        parts.push(n.tagName === 'IMG' ? 'img:' + n.src : 'text:' + n.innerText);
    }
    let h = 2166136261;  // FNV-1a of everything the student sees change
    const s = parts.join('|');
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619) >>> 0; }
    const label = el.querySelector('.widget-label');
    return {kind: kinds.find(k => el.classList.contains(k)) || 'unknown',
            classes: [...el.classList].filter(c => !builtin.test(c)),
            description: label ? label.innerText.trim() : (el.innerText || '').trim().slice(0, 40),
            signature: h + ':' + s.length, images: parts.filter(p => p.startsWith('img:')).length,
            text: parts.filter(p => p.startsWith('text:')).join(' ').slice(0, 300)};
}"""


@dataclass
class Moved:
    """One control moved and what the student saw change."""

    kind: str
    classes: list
    description: str
    before: str
    after: str

    def __str__(self):
        return f"{self.kind}.{'.'.join(self.classes) or '(no class)'} '{self.description}': {self.before} -> {self.after}"


def controls(page):
    return page.locator(CONTROLS)


def move(page, el, kind):
    """Move one control as a student would; returns (value before, value after) as shown."""
    if kind == "widget-slider":
        handle = el.locator(".noUi-handle").first
        readout = el.locator(".widget-readout")
        before = readout.inner_text()
        now, top = float(handle.get_attribute("aria-valuenow")), float(handle.get_attribute("aria-valuemax"))
        handle.focus()
        handle.press("ArrowRight" if now < top else "ArrowLeft")
        page.wait_for_function("([r, b]) => r.innerText !== b", arg=[readout.element_handle(), before])
        return before, readout.inner_text()
    if kind == "widget-dropdown":
        select = el.locator("select")
        before = select.input_value()
        options = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        target = next(o for o in options if o != before)
        select.select_option(target)
        return before, select.input_value()
    if kind == "widget-checkbox":
        box = el.locator("input[type=checkbox]")
        before = box.is_checked()
        box.click()
        return str(before), str(box.is_checked())
    if kind == "widget-toggle-buttons":
        before = el.locator("button.mod-active").inner_text()
        el.locator("button:not(.mod-active)").first.click()
        return before, el.locator("button.mod-active").inner_text()
    if kind == "widget-radio":
        before = el.locator("input:checked").evaluate("i => i.parentElement.innerText")
        el.locator("input:not(:checked)").first.click()
        return before, el.locator("input:checked").evaluate("i => i.parentElement.innerText")
    if kind == "widget-text":
        box = el.locator("input")
        before = box.input_value()
        try:
            after = str(float(before) + 1)
        except ValueError:
            after = before + "x"
        box.fill(after)
        box.press("Enter")
        return before, box.input_value()
    if kind == "widget-button":
        el.click()
        return "", "clicked"
    raise AssertionError(f"control of unknown kind {kind}: the browser tests cannot move it")


def check_widgets(nb, shots: Path, expect_classes=(), timeout=120_000):
    """Move every control of the notebook once; assert that each redraws what it drives.

    Fails (AssertionError, or Playwright's TimeoutError) when: a class in `expect_classes`
    is on no control, a control carries no class of its own, a move does not change the
    figure/text it drives within `timeout` ms, or any cell shows an error afterwards.
    Screenshots of each widget before and after its move go to `shots`. Returns [Moved].
    """
    page = nb.page
    for cls in expect_classes:
        assert page.locator(f".jp-Notebook .{cls}").count() > 0, f"{nb.name}: no widget with class '{cls}' rendered"
    els = controls(page).all()
    assert els, f"{nb.name}: no widget control rendered"
    shots.mkdir(parents=True, exist_ok=True)
    moved = []
    for i, el in enumerate(els):
        el.scroll_into_view_if_needed()
        d = el.evaluate(JS_DESCRIBE)
        tag = f"{i:02d}-{(d['classes'] or ['noclass'])[0]}-{d['kind']}"
        assert d["classes"], f"{nb.name}: {d['kind']} '{d['description']}' has no CSS class of its own (add_class)"
        page.screenshot(path=shots / f"{tag}-before.png", full_page=False)
        before, after = move(page, el, d["kind"])
        assert before != after, f"{nb.name}: {tag} did not take the new value ({before})"
        try:
            page.wait_for_function("([e, js, sig]) => eval(js)(e).signature !== sig",
                                   arg=[el.element_handle(), JS_DESCRIBE, d["signature"]], timeout=timeout, polling=250)
        except Exception as e:
            page.screenshot(path=shots / f"{tag}-no-redraw.png")
            raise AssertionError(f"{nb.name}: {tag} '{d['description']}' moved {before} -> {after} "
                                 f"but nothing it drives changed within {timeout / 1000:.0f} s") from e
        nb.wait_idle(timeout)
        new = el.evaluate(JS_DESCRIBE)
        page.screenshot(path=shots / f"{tag}-after.png")
        assert new["images"] >= d["images"], f"{nb.name}: {tag}: the figure disappeared after the move"
        errors = nb.errors()
        assert not errors, f"{nb.name}: after moving {tag} a cell shows an error:\n" + "\n---\n".join(errors)
        moved.append(Moved(d["kind"], d["classes"], d["description"], before, after))
    return moved


def reset_dir(path: Path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
