"""The slide decks (experiments/slides.py, built with the site), driven in headless Chromium.

Each deck opens from the local server with every outside request blocked, reveal.js starts, the
test advances with Reveal.next() through every slide, counting them against the notebook's tagged
cells (or first cell + Summary), and on each slide checks that its images loaded and its maths was
typeset; no outside request, no HTTP error, no console error. A fixture notebook with tagged
Markdown, figure and code cells checks the conventions (what a slide shows) in the same browser.
"""

import base64
import json
from pathlib import Path

import nbformat
import pytest

import sitecheck as sc
from experiments import slides

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

ADVANCE_JS = """() => {
  const seen = [];
  Reveal.slide(0);
  while (true) {
    const s = Reveal.getCurrentSlide();
    const imgs = [...s.querySelectorAll('img')];
    seen.push({index: Reveal.getIndices().h, visible: s.classList.contains('present'),
               images: imgs.length, broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
               maths: s.querySelectorAll('mjx-container').length});
    if (Reveal.isLastSlide()) break;
    Reveal.next();
  }
  return {total: Reveal.getTotalSlides(), seen};
}"""


def drive(context, url):
    def ready(page):
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
    rep, page = sc.open_page(context, url, settle=ready)
    run = page.evaluate(ADVANCE_JS)
    page.close()
    return rep, run


def fixture_notebook(path):
    png = base64.b64encode(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2c1b2a10000000049454e44ae426082")).decode()
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# 99 · Fixture\n\n**After this notebook you can**\n- count slides", metadata={"tags": ["slide"]}),
        v4.new_markdown_cell("Not on a slide."),
        v4.new_markdown_cell("## Derivation\n\n$$X \\approx D C^\\top$$ with $r \\ll d$", metadata={"tags": ["slide"]}),
        v4.new_code_cell("plot()", metadata={"tags": ["slide"]},
                         outputs=[v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]),
        v4.new_code_cell("print(claim)", metadata={"tags": ["slide", "slide-code"]},
                         outputs=[v4.new_output("stream", name="stdout", text="claim holds\n")]),
        v4.new_markdown_cell("## Summary\n\n- one slide per tagged cell", metadata={"tags": ["slide"]}),
    ]
    nbformat.write(v4.new_notebook(cells=cells), path)
    return path


@pytest.fixture(scope="module")
def decks(browser, book, book_server):
    context = sc.site_context(browser, book_server)
    out = {nb.stem: drive(context, book_server + f"slides/{nb.stem}.html") for nb in NOTEBOOKS}
    context.close()
    for name, (rep, run) in out.items():
        print(f"\n  deck {name}: {run['total']} slides, {rep.requests} requests, {len(rep.outside)} outside")
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_opens_and_advances_through_every_slide(decks, nb):
    rep, run = decks[nb.stem]
    expected = slides.deck_info(nb)["count"]
    assert expected >= 2
    assert run["total"] == expected == len(run["seen"])
    assert [s["index"] for s in run["seen"]] == list(range(expected))
    assert all(s["visible"] for s in run["seen"])
    assert not any(s["broken"] for s in run["seen"]), run["seen"]
    assert not rep.problems(), rep.problems()


def test_decks_are_linked_from_the_site(book):
    html = book[0]
    page = (html / "slides.html").read_text() + (html / "notebooks" / "README.html").read_text()
    for nb in NOTEBOOKS:
        assert f'slides/{nb.stem}.html"' in page, nb.stem


def test_fixture_deck_follows_the_tags(browser, tmp_path):
    dest = tmp_path / "slides"
    modules = ROOT / "build" / "npm" / "node_modules"
    mathjax = tmp_path / "mathjax"
    from experiments import site
    site.copy_mathjax(site.npm_assets(), mathjax)
    info = slides.write_decks([fixture_notebook(tmp_path / "99_fixture.ipynb")], dest, modules,
                              mathjax="../mathjax/tex-chtml.js")
    assert info == [{"name": "99_fixture", "count": 5, "tagged": True}]
    with sc.serve(tmp_path) as origin:
        context = sc.site_context(browser, origin)
        rep, run = drive(context, origin + "slides/99_fixture.html")
        context.close()
    assert not rep.problems(), rep.problems()
    assert run["total"] == 5
    assert [s["images"] for s in run["seen"]] == [0, 0, 1, 0, 0]
    assert run["seen"][1]["maths"] == 2  # the display and the inline equation, typeset
    text = (dest / "99_fixture.html").read_text()
    assert "Not on a slide" not in text
    assert "plot()" not in text and "print(claim)" in text and "claim holds" in text  # code only with slide-code
