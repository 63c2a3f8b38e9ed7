"""The documentation site: ``mkdocs build --strict`` passes (no broken link, no unrendered API
object), the generated reference pages hold what the code holds (every subcommand's usage as
the parser prints it, every registry entry, every schema field), every local document a page or
the README cites exists, and the built site, served on loopback, works in a real headless
Chromium: the navigation leads to a page and the search finds "plug-in"."""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

# the page tests' Chromium, skipped or failed as they are (LIFEIQA_REQUIRE_BROWSER)
from test_html_page import ARTIFACTS, browser  # noqa: F401 (a fixture)

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text())
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, **QUIET})
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    return out


@pytest.mark.slow
def test_the_cli_reference_is_the_parser_s_own_help(site):
    text = page_text(site / "reference" / "cli.html")
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert len(subcommands) >= 15
    for name, sub in subcommands.items():
        first_line = " ".join(sub.format_usage().split()[:4])  # "usage: lifeiqa-bench run [-h]"
        assert first_line in text, name
        for action in sub._actions:
            for flag in action.option_strings if action.help != argparse.SUPPRESS else ():
                assert flag in text, f"{name} {flag}"


@pytest.mark.slow
def test_the_registry_and_format_pages_list_every_entry(site):
    import json
    from importlib import resources

    # the registries as a fresh process sees them (this one may hold models other tests added)
    listed = subprocess.run(
        [sys.executable, "-c", "import json; from harness.api import catalog; print(json.dumps("
         "{w: catalog(w, ()) for w in ('protocols', 'recipes', 'presets', 'models', 'datasets')}))"],
        capture_output=True, text=True, timeout=300, check=True)
    registries = page_text(site / "reference" / "registries.html")
    for what, rows in json.loads(listed.stdout).items():
        assert rows, what
        for row in rows:
            assert row["name"] in registries, (what, row["name"])
    formats = page_text(site / "reference" / "formats.html")
    for package, name in (("harness.results", "result.schema.json"),
                          ("harness.reporting", "leaderboard.schema.json")):
        schema = json.loads(resources.files(package).joinpath(name).read_text())
        for field in schema["properties"]:
            assert field in formats, (name, field)
    api = page_text(site / "reference" / "api.html")
    for option in ("slurm_array_parallelism", "noise_units", "define_datasets"):
        assert option in api  # evaluate's keyword-only options are documented


def test_no_file_cites_a_document_the_repository_lacks():
    """Markdown links to local files resolve, in the README and every page; and no file of the
    repository cites DESIGN.md, which lives in docs/ as docs/design.md."""
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    for page in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")]:
        for target in link.findall(page.read_text()):
            if "://" in target:
                continue
            generated = page.parent / target  # pages made at build time (scripts/docs_pages.py)
            made = any(part in target for part in ("reference/", "demo-board/", "speed-figures",
                                                   "contributing.md"))
            assert generated.exists() or made, f"{page.relative_to(ROOT)} links to {target}"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    citing = [name for name in tracked if Path(name).suffix in {".py", ".md", ".yaml", ".txt"}
              and "DESIGN.md" in (ROOT / name).read_text(errors="replace")
              and name != "tests/test_docs_site.py"]
    assert not citing, citing


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.browser
def test_the_site_navigates_and_its_search_finds_plug_ins(browser, served):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    assert "lifeiqa" in browser.title
    link = next(a for a in browser.find_elements(By.CSS_SELECTOR, "nav a.md-nav__link")
                if a.get_attribute("href").endswith("/getting-started.html"))
    browser.execute_script("arguments[0].click()", link)
    WebDriverWait(browser, 20).until(lambda d: d.current_url.endswith("/getting-started.html"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Getting started"

    browser.execute_script("document.getElementById('__search').checked = true")
    box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")
    box.send_keys("plug-in")
    # the results list is re-rendered as the index loads: read it by script, in one go, until it
    # holds the plug-ins tutorial (element handles would go stale between two renders)
    hits = "return [...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)"
    WebDriverWait(browser, 30).until(
        lambda d: any("/tutorials/plugins.html" in h for h in d.execute_script(hits)))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "docs-search.png"))
    browser.execute_script("document.querySelector("
                           "'.md-search-result__item a[href*=\"tutorials/plugins.html\"]').click()")
    WebDriverWait(browser, 20).until(lambda d: "/tutorials/plugins.html" in d.current_url)
    assert "plug-in" in browser.find_element(By.TAG_NAME, "article").text.lower()
