"""The leaderboard page (harness/reporting/html_page.py): made from leaderboard.json alone, its
cells read as the markdown's and carry the JSON's numbers; it is escaped, self-contained and
light; and, in a real headless Chromium opened from disk with no network, it sorts, filters,
links to the units' files and works without JavaScript.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` and the ``selenium``
package (the dev extra). Without them they skip, saying so, unless LIFEIQA_REQUIRE_BROWSER=1
(set by .ci/run, which installs them): there a missing browser fails."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness.errors import ResultSchemaError
from harness.reporting.html_page import PAGE, page_html, write_page
from harness.reporting.leaderboard_format import FORMAT_VERSION, read_leaderboard_document

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "leaderboards" / "synthetic"
ARTIFACTS = ROOT / "test-artifacts"  # screenshots kept after the run (git-ignored)
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOSTILE = "<script>window.pwned=1</script>"


# --- reading the page and the markdown -------------------------------------------------------


class BoardCells(HTMLParser):
    """Every cell of the page's main tables: (block, metric, row, column) -> (text, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[int, str, str, str], tuple[str, str]] = {}
        self.block = -1
        self.metric: str | None = None
        self.row: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if tag == "section" and "block" in (found.get("class") or "").split():
            self.block = int(found["id"].removeprefix("block-"))
        elif tag == "table":
            self.metric = found.get("data-metric")
        elif tag == "tr" and self.metric:
            self.row = found.get("data-row")
        elif tag == "td" and self.metric and self.row and "data-text" in found:
            self.cells[(self.block, self.metric, self.row, found["data-column"])] = (
                found["data-text"], found["data-value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.metric = None


def page_cells(html: str) -> dict[tuple[int, str, str, str], tuple[str, str]]:
    parser = BoardCells()
    parser.feed(html)
    return parser.cells


def markdown_cells(text: str) -> dict[tuple[int, str, str, str], str]:
    """The markdown's main tables: each block ("## protocol ...") has a SRCC and a PLCC table,
    each after its bold heading; (block, metric, row, column) -> cell text."""
    cells = {}
    blocks = [part for part in text.split("\n## ")[1:] if "(protocol v" in part.split("\n")[0]]
    for index, block in enumerate(blocks):
        lines = block.split("\n")
        for at, line in enumerate(lines):
            metric = next((m for m in ("srcc", "plcc") if line.startswith(f"**{m.upper()}**")), None)
            if metric is None:
                continue
            table = []
            for row in lines[at + 2:]:
                if not row.startswith("|"):
                    break
                table.append([c.strip() for c in row.strip("|").split("|")])
            header, body = table[0], table[2:]
            for row in body:
                for column, value in zip(header[2:], row[2:], strict=True):
                    cells[(index, metric, row[0], column)] = value
    return cells


def expected_cells(document: dict) -> dict[tuple[int, str, str, str], float]:
    """Every main-table cell's median in leaderboard.json."""
    return {(index, metric, cell["row"], cell["column"]): cell[metric]["median"]
            for index, block in enumerate(document["blocks"]) for cell in block["cells"]
            for metric in ("srcc", "plcc")}


def check_page_against(html: str, markdown: str, document: dict) -> int:
    """Assert that every cell of the page reads as the markdown's and holds the JSON's median;
    returns the number of cells compared."""
    shown, written = page_cells(html), markdown_cells(markdown)
    numbers = expected_cells(document)
    assert set(shown) == set(written), set(shown) ^ set(written)
    for key, (text, value) in shown.items():
        assert text == written[key], key
        if key in numbers:
            assert float(value) == pytest.approx(numbers[key], abs=5e-7), key
    assert set(numbers) <= set(shown)
    return len(shown)


# --- a fresh leaderboard from a real run -------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A real comparison run (Life-IQA tiny, a probe, PIQE; 3 splits, one epoch) and its
    leaderboard written by the CLI with ``--html`` into another folder than the markdown."""
    root = tmp_path_factory.mktemp("page")

    def bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                              text=True, timeout=900)

    ran = bench("run", "--protocol", "comparison", "--synth-size", "tiny", "--splits", "3",
                "--models", "full,probe_stage3,piqe", "--model", "lifeiqa_tiny", "--set",
                "epochs=1", "--runs", str(root / "runs"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    made = bench("leaderboard", "comparison", "--runs", str(root / "runs"), "--out",
                 str(root / "board"), "--html", str(root / "site"))
    assert made.returncode == 0, made.stderr
    assert f"page {root / 'site' / PAGE}" in made.stdout
    return root


@pytest.mark.slow
def test_a_fresh_page_reads_as_its_markdown_and_holds_its_json_numbers(fresh):
    html = (fresh / "site" / PAGE).read_text()
    document = read_leaderboard_document(fresh / "board" / "leaderboard.json")
    compared = check_page_against(html, (fresh / "board" / "leaderboard.md").read_text(), document)
    assert compared == 2 * 3  # three rows, one column, two metrics
    # figures are copied beside a page written elsewhere, and every one it names is there
    figures = [f["file"] for b in document["blocks"] for f in b["figures"]]
    assert figures and all((fresh / "site" / f).is_file() for f in figures)
    # each unit links to its own files, relative to the page
    assert html.count('result.json"') == sum(len(c["units"]) for b in document["blocks"]
                                              for c in b["cells"])


def test_the_committed_page_is_made_from_the_committed_json_and_is_light():
    html = (COMMITTED / PAGE).read_text()
    document = read_leaderboard_document(COMMITTED / "leaderboard.json")
    assert document["format_version"] == FORMAT_VERSION
    runs = html.split('<meta name="lifeiqa-runs" content="', 1)[1].split('"', 1)[0]
    assert runs == "../../runs"  # where `make leaderboards` leaves the demo's units
    assert page_html(document, runs) == html  # regenerated with the board: nothing stale
    check_page_against(html, (COMMITTED / "leaderboard.md").read_text(), document)
    size = len(html.encode()) + sum((COMMITTED / f["file"]).stat().st_size
                                    for b in document["blocks"] for f in b["figures"])
    assert size < 2_000_000, size


def test_the_page_needs_no_network():
    html = (COMMITTED / PAGE).read_text()
    for reference in ('src="http', "src='http", 'href="http', "href='http", "<link", "url(",
                      "@import", "<iframe"):
        assert reference not in html, reference
    assert html.count("<script>") == 1  # the page's own inline script, nothing loaded


# --- bad input ----------------------------------------------------------------------------------


def _current() -> dict:
    return copy.deepcopy(read_leaderboard_document(COMMITTED / "leaderboard.json"))


def test_a_document_of_an_unknown_version_or_missing_a_field_is_refused_naming_it(tmp_path):
    document = _current()
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps({**document, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ResultSchemaError, match=f"^{path}: field 'format_version' is "
                                                f"{FORMAT_VERSION + 1}, but this harness reads"):
        write_page(path, tmp_path / "site")
    del document["blocks"][1]["cells"][0]["per_unit"]
    path.write_text(json.dumps(document))
    with pytest.raises(ResultSchemaError,
                       match=r"field 'blocks\[1\]\.cells\[0\]\.per_unit': missing"):
        write_page(path, tmp_path / "site")
    assert not (tmp_path / "site" / PAGE).exists()


def test_comparisons_without_a_test_are_shown_as_such(tmp_path):
    """A run of one split pairs each row with the reference once (no Wilcoxon test: p is None),
    and a row missing the reference's units pairs with none: the page says so for each."""
    document = _current()
    block = document["blocks"][1]
    untested, unpaired = block["comparisons"]["srcc"][:2]
    untested.update(pairs=1, p_raw=None, p_holm=None, marker="")
    unpaired.update(pairs=0, median_difference=None, p_raw=None, p_holm=None, marker="")
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(document))
    html = write_page(path, tmp_path / "site").read_text()
    assert "over 1 paired unit(s), not tested (the Wilcoxon test needs 2 pairs or more)" in html
    assert f"vs {unpaired['reference']}: no paired units" in html


def hostile_page(tmp_path: Path) -> Path:
    """The committed board with HTML in a model's name, a column, a note and a figure's name."""
    document = _current()
    block = document["blocks"][1]
    cell = block["cells"][1]
    for c in block["comparisons"]["srcc"] + block["comparisons"]["plcc"]:
        if c["model"] == cell["model"]:
            c["model"] = HOSTILE
    cell["model"] = cell["row"] = HOSTILE
    block["notes"].append(f'a note with "quotes" & {HOSTILE}')
    block["figures"].append({"caption": HOSTILE, "file": 'figures/x"><script>window.pwned=2</script>.png'})
    block["tables"][0]["rows"][0][0] = HOSTILE
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(document))
    return write_page(path, tmp_path / "site")


def test_html_in_names_is_escaped(tmp_path):
    html = hostile_page(tmp_path).read_text()
    assert "<script>window" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert "&quot;quotes&quot; &amp;" in html


# --- in a real browser -------------------------------------------------------------------------


def _browser_missing(chromium: Path = CHROMIUM, chromedriver: Path = CHROMEDRIVER) -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    for path in (chromium, chromedriver):
        if not path.exists():
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return None


def _driver(javascript: bool = True):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # offline: every host name but loopback fails to resolve (the docs site is served on
    # 127.0.0.1), and Chromium's own background traffic is off
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _require_browser(missing: str | None) -> None:
    """Skip a test that needs the browser when it is missing; fail it under CI's
    LIFEIQA_REQUIRE_BROWSER=1."""
    if missing:
        if os.environ.get("LIFEIQA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LIFEIQA_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"no headless browser: {missing}")


@pytest.fixture(scope="module")
def browser():
    _require_browser(_browser_missing())
    driver = _driver()
    yield driver
    driver.quit()


def _open(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    # get() may return before the load event on a busy machine (readyState "interactive" once,
    # with JavaScript off): wait for it, a minute at most
    WebDriverWait(driver, 60, poll_frequency=0.1).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def _visible_rows(table) -> list:
    return [r for r in table.find_elements("css selector", "tbody tr") if r.is_displayed()]


@pytest.mark.browser
def test_the_committed_page_in_chromium_shows_the_json_sorts_and_filters(browser):
    from selenium.webdriver.support.ui import Select

    _open(browser, COMMITTED / PAGE)
    document = read_leaderboard_document(COMMITTED / "leaderboard.json")
    numbers = expected_cells(document)
    shown = 0
    for section in browser.find_elements("css selector", "section.block"):
        block = int(section.get_attribute("id").removeprefix("block-"))
        for table in section.find_elements("css selector", "table.board"):
            metric = table.get_attribute("data-metric")
            for row in table.find_elements("css selector", "tbody tr:not(.published)"):
                for td in row.find_elements("css selector", "td[data-column]"):
                    key = (block, metric, row.get_attribute("data-row"),
                           td.get_attribute("data-column"))
                    if key not in numbers:
                        continue
                    text = td.find_element("css selector", ".cell-text").text
                    assert text == td.get_attribute("data-text"), key
                    assert text.startswith(f"{numbers[key]:.3f}"), key
                    shown += 1
    assert shown == len(numbers)
    # nothing came from anywhere but the disk
    sources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(s.startswith("file://") for s in sources), sources

    comparison = next(s for s in browser.find_elements("css selector", "section.block")
                      if s.get_attribute("data-protocol") == "comparison")
    table = comparison.find_element("css selector", "table.board[data-metric=srcc]")
    header = table.find_element("css selector", "thead th[data-column] button")
    column = header.text
    header.click()

    def values() -> list[float]:
        cells = [r.find_element("css selector", f'td[data-column="{column}"]')
                 for r in _visible_rows(table)]
        return [float(c.get_attribute("data-value")) for c in cells
                if c.get_attribute("data-value")]

    assert values() == sorted(values(), reverse=True) and len(values()) >= 10
    header.click()
    assert values() == sorted(values())
    ARTIFACTS.mkdir(exist_ok=True)
    browser.execute_script("arguments[0].scrollIntoView()", table)
    assert browser.save_screenshot(str(ARTIFACTS / "leaderboard-page-sorted.png"))

    Select(browser.find_element("id", "filter-kind")).select_by_value("probe")
    kinds = {r.get_attribute("data-kind") for r in _visible_rows(table)}
    assert kinds == {"probe"}
    Select(browser.find_element("id", "filter-kind")).select_by_value("")
    Select(browser.find_element("id", "filter-protocol")).select_by_value("routing")
    visible = [s.get_attribute("data-protocol")
               for s in browser.find_elements("css selector", "section.block") if s.is_displayed()]
    assert visible == ["routing"]
    Select(browser.find_element("id", "filter-protocol")).select_by_value("")
    # a dataset the cross-dataset pairs hold: other columns of its table are hidden
    pairs = next(s for s in browser.find_elements("css selector", "section.block")
                 if s.get_attribute("data-protocol") == "cross-dataset")
    wanted = pairs.find_element("css selector", "thead th[data-column]").get_attribute(
        "data-column")
    Select(browser.find_element("id", "filter-dataset")).select_by_value(wanted)
    shown_columns = {th.get_attribute("data-column") for th in pairs.find_elements(
        "css selector", "table.board thead th[data-column]") if th.is_displayed()}
    assert shown_columns == {wanted}
    assert not comparison.is_displayed()  # it has no such column
    Select(browser.find_element("id", "filter-dataset")).select_by_value("")
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(ARTIFACTS / "leaderboard-page.png"))


@pytest.mark.browser
def test_a_fresh_page_in_chromium_links_each_unit_to_its_files(browser, fresh):
    _open(browser, fresh / "site" / PAGE)
    document = read_leaderboard_document(fresh / "board" / "leaderboard.json")
    for td in browser.find_elements("css selector", "table.board td[data-text]"):
        assert td.find_element("css selector", ".cell-text").text == td.get_attribute("data-text")
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "details a")]
    assert len(links) == 2 * sum(len(c["units"]) for c in document["blocks"][0]["cells"])
    for link in links:
        target = Path(unquote(urlparse(link).path))
        assert target.is_file() and target.name in ("result.json", "predictions.csv"), link
    first = browser.find_element("css selector", "table.board td[data-text] a")
    first.click()  # n=3 opens nothing by itself, but lands on the cell's units
    assert browser.execute_script("return location.hash").startswith("#units-")


@pytest.mark.slow
def test_the_page_without_javascript_is_complete_tables(fresh):
    _require_browser(_browser_missing())
    driver = _driver(javascript=False)
    try:
        _open(driver, fresh / "site" / PAGE)
        rows = driver.find_elements("css selector", "table.board tbody tr")
        assert rows and all(r.is_displayed() for r in rows)
        assert not driver.find_element("id", "filters").is_displayed()  # filters need the script
        assert driver.find_elements("css selector", "thead th button") == []  # no sorting
        assert driver.find_elements("css selector", "svg.ci")  # intervals are drawn anyway
    finally:
        driver.quit()


@pytest.mark.browser
def test_escaped_html_does_not_run_in_chromium(browser, tmp_path):
    page = hostile_page(tmp_path)
    _open(browser, page)
    assert browser.execute_script("return window.pwned === undefined")
    headers = [th.text for th in browser.find_elements("css selector", "table.board th[scope=row]")]
    assert HOSTILE in headers


@pytest.mark.browser
def test_the_browser_runs_offline(browser, tmp_path):
    """The resolver rule holds: a page that asks the network for anything gets nothing."""
    page = tmp_path / "asks.html"
    page.write_text('<img id="remote" src="http://example.com/x.png">')
    _open(browser, page)
    assert browser.execute_script(
        "return document.getElementById('remote').naturalWidth") == 0


def test_require_browser_turns_a_skip_into_a_failure(monkeypatch):
    """CI sets LIFEIQA_REQUIRE_BROWSER=1: there a browser that cannot be found fails the tests
    that need it instead of skipping them."""
    missing = _browser_missing(Path("/nonexistent/chromium"), CHROMEDRIVER)
    monkeypatch.setenv("LIFEIQA_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="LIFEIQA_REQUIRE_BROWSER=1 but "):
        _require_browser(missing)
    monkeypatch.delenv("LIFEIQA_REQUIRE_BROWSER")
    with pytest.raises(pytest.skip.Exception,
                       match="no headless browser: /nonexistent/chromium not found"):
        _require_browser(missing)
