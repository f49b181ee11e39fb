"""One reveal.js deck per notebook, from the cells it tags `slide` (built by `python -m experiments.site build`).

One slide per tagged cell, in notebook order: a Markdown cell shows its text (maths typeset by a
local MathJax), a code cell its stored outputs (figures, tables, printed text) and, only when it
is also tagged `slide-code`, its code above them. A notebook that tags no cell yet gets a deck of
its first cell (title and outcomes) and its `## Summary`, and the deck says so.
"""

import base64
import html
import json
import shutil
from pathlib import Path

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

REVEAL_FILES = ("dist/reveal.js", "dist/reveal.css", "dist/theme/white.css", "plugin/math/math.js")


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def slide_cells(nb):
    """(cells, tagged): the cells tagged `slide`, or the first cell and the Summary when none is."""
    cells = nb["cells"]
    tagged = [c for c in cells if "slide" in _tags(c)]
    if tagged:
        return tagged, True
    summary = [c for c in cells if c["cell_type"] == "markdown" and _source(c).lstrip().startswith("## Summary")]
    return ([cells[0]] if cells else []) + summary[-1:], False


def deck_info(path):
    cells, tagged = slide_cells(json.loads(Path(path).read_text()))
    return {"name": Path(path).stem, "count": len(cells), "tagged": tagged}


def _math(content, opts):
    # left for MathJax to typeset, in the delimiters it looks for
    return (r"\[" if opts.get("display_mode") else r"\(") + html.escape(content) + \
        (r"\]" if opts.get("display_mode") else r"\)")


_MD = MarkdownIt("commonmark", {"html": True}).enable("table").use(dollarmath_plugin, renderer=_math,
                                                                    allow_digits=False)


def markdown(text):
    return _MD.render(text)


def _outputs(cell, images, stem):
    parts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            parts.append(f"<pre class='out'>{html.escape(''.join(out['text']))}</pre>")
        elif "image/png" in data:
            name = f"{stem}_{len(list(images.glob(stem + '_*')))}.png"
            png = data["image/png"]
            (images / name).write_bytes(base64.b64decode("".join(png) if isinstance(png, list) else png))
            parts.append(f"<img src='img/{name}' alt='figure'>")
        elif "text/html" in data:
            parts.append("".join(data["text/html"]))
        elif "text/markdown" in data:
            parts.append(markdown("".join(data["text/markdown"])))
        elif "text/plain" in data and "application/vnd.jupyter.widget-view+json" not in data:
            parts.append(f"<pre class='out'>{html.escape(''.join(data['text/plain']))}</pre>")
    return "\n".join(parts)


def slide_html(cell, images, stem):
    if cell["cell_type"] == "markdown":
        return markdown(_source(cell))
    code = f"<pre><code class='python'>{html.escape(_source(cell))}</code></pre>\n" if "slide-code" in _tags(cell) else ""
    return code + _outputs(cell, images, stem)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="reveal/reveal.css"><link rel="stylesheet" href="reveal/white.css">
<style>.reveal {{ font-size: 26px; }} .reveal section {{ text-align: left; }}
.reveal section img {{ max-height: 560px; max-width: 100%; }} .reveal pre {{ font-size: 0.6em; width: 100%; }}
.reveal h1 {{ font-size: 1.6em; }} .reveal h2 {{ font-size: 1.3em; }} .reveal table {{ font-size: 0.6em; }}
.note {{ font-size: 0.6em; color: #666; }}</style></head>
<body><div class="reveal"><div class="slides">
{sections}
</div></div>
<script src="reveal/reveal.js"></script><script src="reveal/math.js"></script>
<script>Reveal.initialize({{hash: true, width: 1280, height: 800, margin: 0.04,
  mathjax3: {{mathjax: "{mathjax}", tex: {{inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]]}}}},
  plugins: [RevealMath.MathJax3]}});</script>
</body></html>
"""


def write_deck(path, dest, mathjax):
    """dest/<notebook>.html (and its figures in dest/img); returns deck_info."""
    nb = json.loads(Path(path).read_text())
    cells, tagged = slide_cells(nb)
    stem = Path(path).stem
    images = dest / "img"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob(stem + "_*"):
        old.unlink()
    sections = [f"<section>{slide_html(c, images, stem)}</section>" for c in cells]
    if not tagged and sections:
        sections[0] = sections[0].replace("</section>", "<p class='note'>This notebook tags no cell `slide` yet: "
                                          "the deck is its first cell and its Summary.</p></section>")
    title = _source(cells[0]).lstrip("# ").splitlines()[0] if cells else stem
    (dest / f"{stem}.html").write_text(PAGE.format(title=html.escape(title), sections="\n".join(sections),
                                                   mathjax=mathjax))
    return {"name": stem, "count": len(cells), "tagged": tagged}


def write_decks(paths, dest, modules, mathjax):
    """A deck per notebook in dest, reveal.js copied beside them from the npm folder `modules`."""
    (dest / "reveal").mkdir(parents=True, exist_ok=True)
    for f in REVEAL_FILES:
        shutil.copy2(Path(modules) / "reveal.js" / f, dest / "reveal" / Path(f).name)
    # the theme's fonts (white.css imports fonts/source-sans-pro/...)
    shutil.copytree(Path(modules) / "reveal.js" / "dist" / "theme" / "fonts", dest / "reveal" / "fonts", dirs_exist_ok=True)
    return [write_deck(p, dest, mathjax) for p in paths]
