"""The course's website (python -m experiments.site build), opened page by page in headless Chromium.

Every HTML page of the build is opened from a local server with every request outside it blocked
and counted; a page passes when it made no outside request, got no HTTP error, logged no console
error, typeset all its equations (MathJax output for every `.math` element, no TeX error), loaded
every image (naturalWidth > 0), and every in-site link of every page resolves (file present,
#fragment an element of the target page). Search finds each notebook for a word of its title.
The negative control runs the same checks on pages with one fault each and requires each fault
to be reported.
"""

import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

import sitecheck as sc

ROOT = Path(__file__).resolve().parents[2]
REPORT = {}


def site_pages(html):
    """Every HTML page of the site but the slide decks (tests/browser/test_slides_browser.py), the
    theme's templates under _static and redirects (index.html: checked as a link)."""
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if p.relative_to(html).parts[0] not in ("_static", "slides")
                  and 'http-equiv="refresh"' not in p.read_text()[:2000].lower())


@pytest.fixture(scope="module")
def reports(browser, book, book_server):
    html, seconds = book
    context = sc.site_context(browser, book_server)
    t0 = time.perf_counter()
    reps = [sc.check_page(context, book_server + quote(p)) for p in site_pages(html)]
    context.close()
    size = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
    print(f"\nsite: built in {seconds[0]:.1f} s wall, {seconds[1]:.1f} s CPU, {size / 2**20:.1f} MiB; {len(reps)} pages opened in "
          f"{time.perf_counter() - t0:.1f} s, {sum(r.requests for r in reps)} requests, "
          f"{sum(len(r.outside) for r in reps)} outside")
    for r in reps:
        print(f"  {r.url[len(book_server):]}: {r.requests} requests, {len(r.outside)} outside, "
              f"{r.images} images, {r.math_typeset}/{r.math_expected} maths, {len(r.links)} links")
    return reps


def test_build_is_offline_and_fast(book):
    html, (wall, cpu) = book
    assert (html / "index.html").is_file()
    assert cpu < 60, f"the site took {cpu:.0f} s of CPU to build ({wall:.0f} s wall)"


def test_every_page_is_present(book):
    html = book[0]
    pages = set(site_pages(html))
    nbs = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    expected = {"README.html", "notebooks/README.html", "experiments/RESULTS.html", "api.html",
                "references.html", "slides.html", "search.html"} | {f"notebooks/{n}.html" for n in nbs}
    assert expected <= pages, f"missing pages: {expected - pages}"
    assert 'url=README.html' in (html / "index.html").read_text()  # the landing page
    for n in nbs:  # the student version is offered as a download from the notebook's page
        assert any((html / "_downloads").rglob(f"{n}.ipynb")), n
        page = (html / f"notebooks/{n}.html").read_text()
        assert re.search(rf'href="[^"]*_downloads/[0-9a-f]+/{n}\.ipynb"', page), f"{n}: no student download link"
        assert f'href="../slides/{n}.html"' in page, f"{n}: no link to its slides"
    api = (html / "api.html").read_text()
    for name in ("hamlib.Hamburger", "hamlib.NMF2D", "hamlib.nmf", "hamlib.grad.GradPlan"):
        assert f'id="{name}"' in api, f"API reference lacks {name}"


def test_every_page_passes_in_the_browser(reports):
    bad = {r.url: r.problems() for r in reports if r.problems()}
    assert not bad, json.dumps(bad, indent=1)[:4000]
    assert sum(r.math_expected for r in reports) > 100  # the notebooks' equations were among the checks
    assert sum(r.images for r in reports) > 20


def test_every_internal_link_resolves(reports, book, book_server):
    bad = sc.broken_links(book[0], book_server, reports)
    assert not bad, "\n".join(bad[:40])
    assert sum(len(r.links) for r in reports) > 200


def test_search_finds_each_notebook(browser, book, book_server):
    context = sc.site_context(browser, book_server)
    misses = {}
    nbs = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    words = {nb: set(re.findall(r"[a-z]{6,}", nb.read_text().lower())) for nb in nbs}
    for nb in nbs:  # a word of the notebook's opening cell that the fewest other notebooks use
        opening = "".join(json.loads(nb.read_text())["cells"][0]["source"]).lower()
        term = min(sorted(set(re.findall(r"[a-z]{6,}", opening))),
                   key=lambda w: sum(w in words[o] for o in nbs if o != nb))
        rep, page = sc.open_page(context, book_server + f"search.html?q={quote(term)}")
        page.wait_for_function("() => /found \\d+ page/.test(document.querySelector('#search-results')?.innerText || '')")
        hits = page.evaluate("() => [...document.querySelectorAll('#search-results a')].map(a => a.href)")
        page.close()
        assert not rep.problems(), rep.problems()
        if not any(f"notebooks/{nb.stem}.html" in h for h in hits):
            misses[nb.stem] = (term, hits[:5])
    context.close()
    assert not misses, misses


FAULTS = {
    "broken_image.html": ('<img src="missing.png" alt="x">', "image not loaded"),
    "outside_script.html": ('<script src="https://cdn.example.org/lib.js"></script>', "outside request"),
    "outside_font.html": ('<link rel="stylesheet" href="https://fonts.example.org/css?family=X">', "outside request"),
    "console_error.html": ("<script>undefinedFunction()</script>", "console:"),
    "untypeset_maths.html": (r'<span class="math">\(x^2\)</span>', "maths not typeset"),
    "broken_link.html": ('<a href="nowhere.html">x</a>', "LINK"),
}


def test_negative_control_each_fault_is_reported(browser, tmp_path):
    (tmp_path / "ok.png").write_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2c1b2a10000000049454e44ae426082"))
    for name, (body, _) in FAULTS.items():
        (tmp_path / name).write_text(f"<!doctype html><html><body><img src='ok.png'>{body}</body></html>")
    with sc.serve(tmp_path) as origin:
        context = sc.site_context(browser, origin)
        reps = {name: sc.check_page(context, origin + name) for name in FAULTS}
        context.close()
    for name, (_, expect) in FAULTS.items():
        problems = reps[name].problems()
        if expect == "LINK":
            assert not problems
            assert sc.broken_links(tmp_path, origin, [reps[name]]) == [f"{origin}{name} -> {origin}nowhere.html (no file)"]
        else:
            assert any(p.startswith(expect) for p in problems), (name, problems)
            assert reps[name].images == 1 + (name == "broken_image.html")
