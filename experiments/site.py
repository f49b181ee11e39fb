"""The course's website and slide decks, built offline from the repository.

    python -m experiments.site build      # -> build/site/_build/html/index.html (about half a minute)
    python -m experiments.site assets     # only fetch MathJax and reveal.js (npm, pinned) into build/npm

The site is a Jupyter Book 1 (Sphinx + myst-nb + sphinx-book-theme) made from a staging copy
(build/site/src) of: the README (landing page), the teacher's page, every notebooks/NN_*.ipynb with
its stored outputs (execution off; a header links the student version as a download and the
session's slides), the results page, the data page, an API reference (sphinx autodoc over every
public hamlib module), the references collected from each notebook's last cell (`## References`) and
a page listing the slide decks. MathJax and reveal.js come from npm at the pinned versions below and
are served from the site itself; launch buttons, Thebe, comments and the ipywidgets CDN are off, so
no page asks for anything outside the site (tests/browser/test_site_browser.py checks it).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "site"
NPM_DIR = ROOT / "build" / "npm"
NPM = {"mathjax": "3.2.2", "reveal.js": "5.2.1"}  # pinned; neither has dependencies of its own
DIST = "hamburger-hamlib"  # the distribution's name on the package index (the import name stays hamlib)
NOTEBOOK = re.compile(r"^\d\d_.+\.ipynb$")
WIDGET = "application/vnd.jupyter.widget-view+json"
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre")


def notebooks(root=ROOT):
    """Every course notebook, notebooks/NN_*.ipynb, in order."""
    return sorted(p for p in (root / "notebooks").glob("*.ipynb") if NOTEBOOK.match(p.name))


# ---------------------------------------------------------------- npm assets
def npm_assets(prefix=NPM_DIR):
    """node_modules holding the pinned MathJax and reveal.js (npm install only when missing or other versions)."""
    modules = prefix / "node_modules"
    def have(name, version):
        meta = modules / name / "package.json"
        return meta.is_file() and json.loads(meta.read_text())["version"] == version
    if not all(have(n, v) for n, v in NPM.items()):
        if not shutil.which("npm"):
            raise RuntimeError("the site needs npm (apt-get install npm) to fetch " + ", ".join(NPM))
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
                        "--prefix", str(prefix), *[f"{n}@{v}" for n, v in NPM.items()]], check=True)
        missing = [n for n, v in NPM.items() if not have(n, v)]
        if missing:
            raise RuntimeError(f"npm did not install {missing} at {NPM}")
    return modules


def copy_mathjax(modules, dest):
    """The parts of MathJax 3 a page loads: the TeX-to-CHTML component, its lazily loaded TeX
    extensions, fonts and menu (not the 20 MB of other components)."""
    src = modules / "mathjax" / "es5"
    for part in MATHJAX_PARTS:
        s, d = src / part, dest / part
        d.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree(s, d, dirs_exist_ok=True) if s.is_dir() else shutil.copy2(s, d))


# ---------------------------------------------------------------- staging
def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def stage_notebook(src, dest, student):
    """The instructor notebook as the site shows it: a header linking the student version and
    the slides; widget outputs (dead without a kernel) replaced by a note."""
    nb = json.loads(src.read_text())
    links = [f"Slides: <a href=\"../slides/{src.stem}.html\">{src.stem} deck</a>"]
    if student.is_file():
        links.insert(0, f"Student version (exercises blank, no outputs): {{download}}`{src.name} <student/{src.name}>`")
    header = _md("*Instructor version, with the outputs of a quick-mode CPU run.* " + " · ".join(links))
    header["metadata"]["tags"] = ["site-header"]
    nb["cells"].insert(1 if nb["cells"] else 0, header)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for out in cell.get("outputs", []):
                if WIDGET in out.get("data", {}):
                    out["data"] = {"text/markdown": "*(an interactive widget: run the notebook in JupyterLab to use it)*"}
    nb.get("metadata", {}).pop("widgets", None)
    dest.write_text(json.dumps(nb))


SLIDE_LINK = re.compile(r"\]\(\.\./build/site/_build/html/(slides/[^)]+)\)")


def stage_markdown(src, dest, depth):
    """A Markdown page; links into the built site (the syllabus's slide links) become site links."""
    text = src.read_text()
    text = SLIDE_LINK.sub(lambda m: "](" + "../" * depth + m.group(1) + ")", text)
    text = re.sub(r"\[([^\]]+)\]\(((?:\.\./)*slides/[^)]+\.html)\)", r'<a href="\2">\1</a>', text)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)


def landing_page(root):
    """The README with its notebook table linking the notebook pages."""
    text = (root / "README.md").read_text()
    return re.sub(r"^\| `(\d\d_[^`]+)\.ipynb` \|", r"| [\1](notebooks/\1.ipynb) |", text, flags=re.M)


def api_modules():
    """Every public module of hamlib (no `_` names, not the stubs of moved command lines)."""
    import pkgutil

    import hamlib
    from hamlib._moved import MOVED

    skip = set(MOVED) | {"hamlib.experiments"}
    names = ["hamlib"]
    for info in pkgutil.walk_packages(hamlib.__path__, "hamlib."):
        if any(part.startswith("_") for part in info.name.split(".")) or \
                any(info.name == s or info.name.startswith(s + ".") for s in skip):
            continue
        names.append(info.name)
    return names


def api_page():
    lines = ["# API reference", "",
             f"Generated by Sphinx autodoc from the docstrings of the installed package (`pip install {DIST}`, "
             "`import hamlib`). `hamlib` itself re-exports the names most code needs.", ""]
    for name in api_modules():
        lines += [f"## `{name}`", "", "```{eval-rst}", f".. automodule:: {name}",
                  "   :members:" + (" " + ", ".join(__import__("hamlib").__all__) if name == "hamlib" else ""),
                  "```", ""]
    return "\n".join(lines)


REF_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+(.*?)\s*$")
LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def references(nb_path):
    """(items, from_cell): the notebook's `## References` list as [(text, url)]; when it has none yet,
    the outside links of its Markdown cells (from_cell False)."""
    cells = json.loads(nb_path.read_text())["cells"]
    src = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    for cell in reversed(cells):
        if cell["cell_type"] == "markdown" and src(cell).lstrip().startswith("## References"):
            items = []
            for line in src(cell).splitlines()[1:]:
                m = REF_ITEM.match(line)
                if m:
                    link = LINK.search(m.group(1))
                    items.append((link.group(1), link.group(2)) if link else (m.group(1), None))
            return items, True
    found = {}
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for text, url in LINK.findall(src(cell)):
                found.setdefault(url, text)
    return [(t, u) for u, t in found.items()], False


def references_page(nbs):
    works, missing = {}, []
    for nb in nbs:
        items, from_cell = references(nb)
        if not from_cell:
            missing.append(nb.stem)
        for text, url in items:
            works.setdefault(url or text, [text, []])[1].append(nb.stem)
    lines = ["# References", "",
             "Every work a notebook cites in its closing `## References` cell, once, with the notebooks that cite it.", ""]
    if missing:
        lines += ["Notebooks without a References cell yet (their outside links are listed instead): "
                  + ", ".join(f"[{m}](notebooks/{m}.ipynb)" for m in missing) + ".", ""]
    for i, (key, (text, cited)) in enumerate(sorted(works.items(), key=lambda kv: kv[1][0].lower()), 1):
        title = f"[{text}]({key})" if key.startswith("http") else text
        lines.append(f"{i}. {title} — " + ", ".join(f"[{c[:2]}](notebooks/{c}.ipynb)" for c in cited))
    return "\n".join(lines) + "\n"


def slides_page(decks):
    lines = ["# Slides", "", "One reveal.js deck per session, made from the notebook's cells tagged `slide` "
             "(one slide per cell; arrow keys or space to advance, `f` full screen).", "",
             "| notebook | slides | made from |", "|---|---|---|"]
    for d in decks:
        made = "its tagged cells" if d["tagged"] else "its first cell and Summary (no cell tagged `slide` yet)"
        lines.append(f'| <a href="slides/{d["name"]}.html">{d["name"]}</a> | {d["count"]} | {made} |')
    return "\n".join(lines) + "\n"


def config(title):
    return {
        "title": title, "author": "the hamlib authors", "copyright": "2026", "logo": "",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "exclude_patterns": ["notebooks/student/*", "**.ipynb_checkpoints"],
        "html": {"use_repository_button": False, "use_issues_button": False, "use_edit_page_button": False,
                 "use_download_button": True, "use_multitoc_numbering": False, "favicon": "",
                 "comments": {"hypothesis": False, "utterances": False}, "google_analytics_id": "",
                 "extra_footer": f"<p>pip install {DIST} · built offline by python -m experiments.site build</p>"},
        "launch_buttons": {"notebook_interface": "classic", "binderhub_url": "", "jupyterhub_url": "",
                           "thebe": False, "colab_url": "", "deepnote_url": ""},
        "repository": {"url": "", "branch": "main"},
        "parse": {"myst_enable_extensions": ["amsmath", "colon_fence", "dollarmath", "substitution", "tasklist"]},
        # Jupyter Book's own extensions less sphinx_thebe (its inline script, declared twice on a page,
        # raises in the console, and Thebe loads from a CDN) and sphinx_comments; plus autodoc
        "sphinx": {"config": {"extensions": ["sphinx_togglebutton", "sphinx_copybutton", "myst_nb", "jupyter_book",
                                             "sphinx_external_toc", "sphinx_design", "sphinx_book_theme",
                                             "sphinx.ext.autodoc"],
                              "mathjax_path": "mathjax/tex-chtml.js", "nb_ipywidgets_js": {}, "myst_heading_anchors": 3,
                              "html_theme_options": {"use_download_button": True, "show_toc_level": 2,
                                                     "navigation_with_keys": False,
                                                     "default_mode": "light"},
                              "html_context": {"default_mode": "light"},  # pydata-sphinx-theme reads it there
                              "autodoc_member_order": "bysource", "autodoc_typehints": "none",
                              "suppress_warnings": ["misc.highlighting_failure", "mystnb.unknown_mime_type",
                                                    "myst.header"]}},
    }


def toc(nbs):
    return {"format": "jb-book", "root": "README",
            "parts": [{"caption": "Course", "chapters": [{"file": "notebooks/README"}]
                       + [{"file": f"notebooks/{nb.stem}"} for nb in nbs]},
                      {"caption": "Reference", "chapters": [{"file": f} for f in
                                                            ("experiments/RESULTS", "data/README", "api",
                                                             "references", "slides")]}]}


def stage(src, root=ROOT, decks=()):
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks" / "student").mkdir(parents=True)
    (src / "README.md").write_text(landing_page(root))
    stage_markdown(root / "notebooks" / "README.md", src / "notebooks" / "README.md", depth=1)
    for page in ("experiments/RESULTS.md", "data/README.md"):
        stage_markdown(root / page, src / page, depth=1)
    nbs = notebooks(root)
    for nb in nbs:
        student = root / "notebooks" / "student" / nb.name
        if student.is_file():
            shutil.copy2(student, src / "notebooks" / "student" / nb.name)
        stage_notebook(nb, src / "notebooks" / nb.name, student)
    (src / "api.md").write_text(api_page())
    (src / "references.md").write_text(references_page(nbs))
    (src / "slides.md").write_text(slides_page(decks))
    import yaml
    (src / "_config.yml").write_text(yaml.safe_dump(config("Hamburger: a course in PyTorch"), sort_keys=False))
    (src / "_toc.yml").write_text(yaml.safe_dump(toc(nbs), sort_keys=False))
    return nbs


def build(out=BUILD, root=ROOT, quiet=True):
    """Stage, build with Jupyter Book (no execution), add MathJax and the slide decks; returns the html folder."""
    from experiments import slides

    modules = npm_assets()
    decks = [slides.deck_info(nb) for nb in notebooks(root)]
    src = out / "src"
    stage(src, root, decks)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--path-output", str(out), "--keep-going"]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    res = subprocess.run(cmd + (["--quiet"] if quiet else []), env=env, capture_output=quiet, text=True)
    html = out / "_build" / "html"
    if res.returncode != 0 or not (html / "README.html").is_file():
        raise RuntimeError(f"jupyter-book build failed ({res.returncode}):\n{(res.stdout or '')[-3000:]}{(res.stderr or '')[-3000:]}")
    copy_mathjax(modules, html / "_static" / "mathjax")
    slides.write_decks(notebooks(root), html / "slides", modules, mathjax="../_static/mathjax/tex-chtml.js")
    return html


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["build", "assets"])
    p.add_argument("--out", type=Path, default=BUILD, help="output folder (default build/site)")
    p.add_argument("-v", "--verbose", action="store_true", help="show Sphinx's output")
    a = p.parse_args(argv)
    if a.command == "assets":
        print(npm_assets())
        return
    t0 = time.perf_counter()
    html = build(a.out, quiet=not a.verbose)
    size = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
    pages = len(list(html.rglob("*.html")))
    print(f"site: {html / 'index.html'} ({pages} HTML files, {size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
