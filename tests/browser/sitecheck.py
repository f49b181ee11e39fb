"""Open pages of a static site in headless Chromium and say what is wrong with each.

`serve(folder)` serves a folder on 127.0.0.1; `check_page(context, url)` opens one page with every
request outside the server blocked and recorded, and returns a PageReport: outside requests,
responses >= 400, console errors and uncaught exceptions, images that did not load (naturalWidth 0),
maths not typeset (Sphinx's `.math` elements or a deck's TeX delimiters without MathJax output, or
MathJax's error elements), and the page's links and element ids for `broken_links`.
"""

import contextlib
import functools
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class PageReport:
    url: str
    outside: list = field(default_factory=list)      # requested URLs outside the site (blocked)
    failed: list = field(default_factory=list)       # "404 URL" for site responses >= 400
    console: list = field(default_factory=list)      # console errors and uncaught exceptions
    broken_images: list = field(default_factory=list)
    images: int = 0
    math_expected: int = 0                           # equations on the page
    math_typeset: int = 0                            # MathJax containers rendered
    math_errors: int = 0                             # mjx-merror elements (TeX MathJax could not read)
    links: list = field(default_factory=list)        # absolute hrefs of <a> elements
    ids: set = field(default_factory=set)
    requests: int = 0                                # every request the page made (site and outside)

    def problems(self):
        out = [f"outside request {u}" for u in self.outside] + [f"HTTP {f}" for f in self.failed]
        out += [f"console: {c}" for c in self.console] + [f"image not loaded: {s}" for s in self.broken_images]
        if self.math_typeset < self.math_expected:
            out.append(f"maths not typeset: {self.math_typeset} MathJax outputs for {self.math_expected} equations")
        if self.math_errors:
            out.append(f"{self.math_errors} TeX errors (mjx-merror)")
        return out


MATH_JS = """async () => {
  const expected = document.querySelectorAll('.math').length
      + (document.querySelector('.reveal .slides') ? (document.querySelector('.reveal .slides').innerHTML.match(/\\\\\\(|\\\\\\[/g) || []).length : 0);
  if (expected && window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  if (expected && window.MathJax && MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  return [expected, document.querySelectorAll('mjx-container').length, document.querySelectorAll('mjx-merror').length];
}"""

IMAGES_JS = """async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => { i.loading = 'eager'; return i.decode().catch(() => null); }));
  return [imgs.length, imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))];
}"""


def guard(context, origin, report_for):
    """Route every request of `context`: inside `origin` (and data:/blob:) go on, others are aborted and recorded."""
    def handle(route, request):
        rep = report_for()
        rep.requests += 1
        if request.url.startswith(origin) or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            rep.outside.append(request.url)
            route.abort()
    context.route("**/*", handle)


def open_page(context, url, settle=None):
    """A PageReport for `url`, opened in a new tab of `context` (which `guard` must have routed to
    the report returned by the `current` holder). `settle(page)` runs after load, before the checks."""
    rep = PageReport(url)
    context._site_report = rep
    page = context.new_page()
    page.on("console", lambda m: rep.console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: rep.console.append(f"uncaught {e}"))
    page.on("response", lambda r: rep.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: None)
    page.goto(url, wait_until="load")
    if settle:
        settle(page)
    rep.math_expected, rep.math_typeset, rep.math_errors = page.evaluate(MATH_JS)
    rep.images, rep.broken_images = page.evaluate(IMAGES_JS)
    rep.links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    rep.ids = set(page.evaluate("() => [...document.querySelectorAll('[id]')].map(e => e.id)"))
    return rep, page


def site_context(browser, origin):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    guard(context, origin, lambda: context._site_report)
    return context


def check_page(browser_context, url, settle=None):
    rep, page = open_page(browser_context, url, settle)
    page.close()
    return rep


def local_path(root, origin, link):
    """The file in `root` that an in-site link points at (None for outside links)."""
    if not link.startswith(origin):
        return None
    path = unquote(urlparse(link).path).lstrip("/")
    target = Path(root) / path
    return target / "index.html" if (not path or target.is_dir()) else target


def broken_links(root, origin, reports):
    """'page -> link (why)' for every in-site link whose file is missing, or whose #fragment names no
    element of the target page (for the pages in `reports`)."""
    ids = {urldefrag(r.url)[0]: r.ids for r in reports}
    bad = []
    for r in reports:
        for link in r.links:
            target = local_path(root, origin, link)
            if target is None:
                continue
            base, frag = urldefrag(link)
            if not target.is_file():
                bad.append(f"{r.url} -> {link} (no file)")
            elif frag and base in ids and unquote(frag) not in ids[base]:
                bad.append(f"{r.url} -> {link} (no element #{frag})")
    return bad
