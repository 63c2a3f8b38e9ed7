"""The leaderboard as one static page: ``index.html``, made from ``leaderboard.json`` alone.

The page reads the document through :func:`~harness.reporting.leaderboard_format.
read_leaderboard_document` (any format version, validated) and formats every cell with the
functions the markdown uses (:func:`~harness.results.aggregate.interval_text`,
:func:`~harness.results.aggregate.cell_display`), so a cell reads the same in both. It is one
file: styles and a small script inline, figures as the PNG files beside it, no network, no
CDN; it opens from disk. Without JavaScript it is complete (real tables with header cells and
captions, intervals as inline SVG, p-values in ``title`` tooltips, units in ``<details>``); the
script adds sorting by any column and filters by dataset, model kind and protocol.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from html import escape
from pathlib import Path
from typing import Any

from harness.fileio import atomic_write_text
from harness.reporting.leaderboard_format import read_leaderboard_document
from harness.results.aggregate import SELECTION_LABELS, cell_display, interval_text, kind_label

PAGE = "index.html"
METRICS = {"srcc": "SRCC", "plcc": "PLCC"}


def write_page(document: str | Path, out: str | Path, runs: str | Path | None = None) -> Path:
    """``out/index.html`` from the ``leaderboard.json`` at ``document``; the figures it names are
    copied beside the page when it is written elsewhere. ``runs``: the runs folder the units'
    ``folder`` paths are relative to; each cell's units then link to their ``result.json`` and
    ``predictions.csv`` by a path relative to the page (valid while the two stay where they
    are); None: no links."""
    source = Path(document)
    data = read_leaderboard_document(source)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if out_dir.resolve() != source.parent.resolve():
        for block in data["blocks"]:
            for figure in block["figures"]:
                target = out_dir / figure["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                if (source.parent / figure["file"]).is_file():
                    shutil.copyfile(source.parent / figure["file"], target)
    runs_link = None if runs is None else Path(os.path.relpath(Path(runs).resolve(),
                                                               out_dir.resolve())).as_posix()
    path = out_dir / PAGE
    atomic_write_text(path, page_html(data, runs_link))
    return path


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _heat(value: float | None, low: float, high: float) -> str:
    """A background colour for ``value`` on [low, high]: white to blue, text stays dark."""
    if value is None or high <= low:
        return ""
    share = min(max((value - low) / (high - low), 0.0), 1.0)
    return f' style="background:hsl(210 70% {96 - 40 * share:.0f}%)"'


def interval_svg(median: float, low: float, high: float, scale: tuple[float, float],
                 label: str) -> str:
    """An error bar: the interval as a line, the median as a tick, on the table's common scale."""
    left, right = scale
    span = right - left or 1.0

    def x(value: float) -> float:
        return 2 + 96 * (value - left) / span

    return (f'<svg class="ci" viewBox="0 0 100 10" width="100" height="10" role="img" '
            f'aria-label="{_e(label)}"><line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="5" '
            f'y2="5"/><rect x="{x(median) - 1:.1f}" y="1" width="2" height="8"/></svg>')


def bar_scale(intervals: list[list[float]]) -> tuple[float, float]:
    """The common scale of a table's error bars: its intervals' range, with a margin."""
    low = min((i[0] for i in intervals), default=0.0)
    high = max((i[1] for i in intervals), default=1.0)
    margin = 0.05 * (high - low) or 0.05
    return low - margin, high + margin


def _comparison_title(comparison: dict | None) -> str:
    if comparison is None:
        return ""
    versus = f"; vs {comparison['reference']}: "
    if comparison["median_difference"] is None:
        return versus + "no paired units"
    versus += (f"median difference {comparison['median_difference']:+.3f} over "
               f"{comparison['pairs']} paired unit(s)")
    if comparison["p_raw"] is None:  # a run of one split or seed: nothing to test
        return versus + ", not tested (the Wilcoxon test needs 2 pairs or more)"
    stability = comparison.get("stability")
    kept = "" if stability is None else \
        f"; this verdict given again in {stability:.0%} of re-tests under rerun noise"
    return (f"{versus}, Wilcoxon p = {comparison['p_raw']:.3g}, Holm-adjusted p = "
            f"{comparison['p_holm']:.3g} (family of {comparison['family_size']}){kept}")


def _cell_td(block_index: int, cell_index: int, cell: dict, metric: str, expected: int,
             comparison: dict | None, scale: tuple[float, float]) -> str:
    summary = cell[metric]
    low, high = summary["interval"]
    interval = interval_text(summary["median"], low, high, cell["n"], summary["coverage"])
    marker = comparison["marker"] if comparison else ""
    text = cell_display(interval, cell["n"], expected, marker, cell["not_zero_shot"])
    count = f"n={cell['n']}" if cell["n"] >= expected else f"n={cell['n']}/{expected}"
    shown = _e(interval) + " " + f'<a href="#units-{block_index}-{cell_index}">{_e(count)}</a>'
    if marker:
        assert comparison is not None  # a marker comes from a comparison
        shown += (f' <span class="marker" title="Holm-adjusted p = {comparison["p_holm"]:.3g}'
                  f'">{_e(marker)}</span>')
    if cell["not_zero_shot"]:
        shown += ' <span title="fitted on this dataset: not zero-shot">†</span>'
    title = (f"{METRICS[metric]} median {summary['median']:.4f}, interval [{low:.4f}, "
             f"{high:.4f}] ({summary['coverage']:.1%} coverage), {cell['n']} of {expected} "
             f"units" + _comparison_title(comparison))
    label = f"interval {low:.3f} to {high:.3f}, median {summary['median']:.3f}"
    return (f'<td data-column="{_e(cell["column"])}" data-value="{summary["median"]:.6f}" '
            f'data-text="{_e(text)}" title="{_e(title)}"><span class="cell-text">{shown}</span>'
            f'{interval_svg(summary["median"], low, high, scale, label)}</td>')


def board_table(block_index: int, block: dict, metric: str) -> str:
    """One block's table of ``metric``: a row per model (and config), a column per dataset or
    pair, then the published rows; the reference row marked."""
    cells = block["cells"]
    columns = sorted({c["column"] for c in cells})
    comparisons = {(c["model"], c["column"], c["config_hash"]): c
                   for c in block["comparisons"].get(metric, [])}
    scale = bar_scale([c[metric]["interval"] for c in cells])
    rows: dict[str, dict[str, Any]] = {}
    for index, cell in enumerate(cells):
        row = rows.setdefault(cell["row"], {"model": cell["model"], "kind": cell["kind"],
                                            "cells": {}})
        comparison = comparisons.get((cell["model"], cell["column"], cell["config_hash"]))
        row["cells"][cell["column"]] = _cell_td(block_index, index, cell, metric,
                                                block["expected_units"][cell["column"]],
                                                comparison, scale)
    reference = block["reference"]
    caption = (f"{METRICS[metric]}"
               + (f" ({_e(block['plcc'])})" if metric == "plcc" else "")
               + f", median [interval] over units, n per cell; reference: {_e(reference or '-')}"
               + f'<span class="scale">; bars from {scale[0]:.3f} to {scale[1]:.3f}</span>')
    head = "".join(f'<th scope="col" data-column="{_e(c)}" data-sort>{_e(c)}</th>'
                   for c in columns)
    body = []
    for label, row in rows.items():
        is_reference = row["model"] == reference
        mark = (' <abbr class="ref" title="the reference model: markers compare each row with '
                'it">reference</abbr>') if is_reference else ""
        tds = "".join(row["cells"].get(c, f'<td data-column="{_e(c)}" data-value="" data-text="-">-</td>')
                      for c in columns)
        marked = ' class="reference"' if is_reference else ""
        body.append(f'<tr data-kind="{_e(kind_label(row["kind"]))}" data-model="{_e(row["model"])}"'
                    f' data-row="{_e(label)}"{marked}><th scope="row">{_e(label)}'
                    f'{mark}</th><td>{_e(kind_label(row["kind"]))}</td>{tds}</tr>')
    for name in sorted({p["model"] for p in block["published"] if p["metric"] == metric}):
        values = {p["column"]: p for p in block["published"]
                  if p["model"] == name and p["metric"] == metric}
        tds = "".join(f'<td data-column="{_e(c)}" data-value="{values[c]["value"]:.6f}" '
                      f'data-text="{values[c]["value"]:.3f}" title="{_e(values[c]["source"])}">'
                      f'<span class="cell-text">{values[c]["value"]:.3f}</span></td>'
                      if c in values else f'<td data-column="{_e(c)}" data-value="" data-text="-">-</td>'
                      for c in columns)
        body.append(f'<tr class="published" data-kind="published" data-model="{_e(name)}" '
                    f'data-row="{_e(name)} (published)">'
                    f'<th scope="row">{_e(name)} (published)</th><td>published</td>{tds}</tr>')
    return (f'<table class="board sortable" data-metric="{metric}"><caption>{caption}</caption>'
            f'<thead><tr><th scope="col" data-sort>model</th><th scope="col" data-sort>kind</th>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def text_table(table: dict) -> str:
    """A table of formatted text (``leaderboard.json``'s ``tables``); a heatmap's numbers
    coloured on the table's own range."""
    numbers = [_number(v) for row in table["rows"] for v in row[1:]] if table["heatmap"] else []
    found = [v for v in numbers if v is not None]
    low, high = (min(found), max(found)) if found else (0.0, 0.0)
    caption = f"{_e(table['title'])} {_e(table['subtitle'])}".strip()
    head = "".join(f'<th scope="col" data-sort>{_e(h)}</th>' for h in table["headers"])
    rows = []
    for row in table["rows"]:
        tds = "".join(f'<td data-value="{_e(row_value)}"'
                      f'{_heat(_number(row_value), low, high) if table["heatmap"] else ""}>'
                      f'{_e(row_value)}</td>' for row_value in row[1:])
        rows.append(f'<tr><th scope="row">{_e(row[0])}</th>{tds}</tr>')
    notes = "".join(f"<li>{_e(n)}</li>" for n in table["notes"])
    return (f'<table class="sortable{" heatmap" if table["heatmap"] else ""}">'
            + (f"<caption>{caption}</caption>" if caption else "")
            + f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            + (f'<ul class="notes">{notes}</ul>' if notes else ""))


def routing_heatmaps(block: dict) -> str:
    """Each routing cell's expert selection frequency by distortion type, as a coloured table."""
    out = []
    for cell in block["analyses"].get("routing", []):
        frequency = cell["frequency"]
        found = [v for row in frequency for v in row]
        low, high = (min(found), max(found)) if found else (0.0, 0.0)
        experts = len(frequency[0]) if frequency else 0
        head = "".join(f'<th scope="col">expert {i}</th>' for i in range(experts))
        rows = "".join(f'<tr><th scope="row">{_e(t)}</th>'
                       + "".join(f"<td{_heat(v, low, high)}>{v:.3f}</td>" for v in values)
                       + "</tr>" for t, values in zip(cell["distortions"], frequency, strict=True))
        out.append(f'<table class="heatmap"><caption>Expert selection frequency by distortion '
                   f'type: {_e(cell["model"])} on {_e(cell["column"])} (mean over '
                   f'{len(cell["units"])} test parts)</caption><thead><tr><th scope="col">type'
                   f'</th>{head}</tr></thead><tbody>{rows}</tbody></table>')
    return "".join(out)


def units_details(block_index: int, block: dict, runs_link: str | None) -> str:
    """Every cell's units: values, split hash, and links to their files."""
    parts = []
    for index, cell in enumerate(block["cells"]):
        rows = []
        for unit, values in (cell["per_unit"] or {}).items():
            folder = values.get("folder")
            links = ("" if runs_link is None or not folder else
                     f'<a href="{_e(runs_link)}/{_e(folder)}/result.json">result.json</a> '
                     f'<a href="{_e(runs_link)}/{_e(folder)}/predictions.csv">predictions.csv</a>')
            rows.append(f'<tr><th scope="row">{_e(unit)}</th><td>{values["srcc"]:.4f}</td>'
                        f'<td>{values["plcc"]:.4f}</td><td><code>'
                        f'{_e(values["split_sha256_16"])}</code></td><td>{links}</td></tr>')
        files = ", ".join(_e(f) for f in cell["split_files"]) or "-"
        parts.append(f'<details id="units-{block_index}-{index}"><summary>{_e(cell["row"])} on '
                     f'{_e(cell["column"])}: {cell["n"]} units</summary><table><caption>Units of '
                     f'{_e(cell["row"])} on {_e(cell["column"])} (config '
                     f'{_e(cell["config_hash"])}); split files: {files}</caption><thead><tr>'
                     f'<th scope="col">unit</th><th scope="col">SRCC</th><th scope="col">PLCC'
                     f'</th><th scope="col">split sha256/16</th><th scope="col">files</th></tr>'
                     f'</thead><tbody>{"".join(rows)}</tbody></table></details>')
    return "".join(parts)


def block_section(block_index: int, block: dict, runs_link: str | None) -> str:
    selection = SELECTION_LABELS.get(block["selection"], block["selection"])
    heading = (f'{_e(block["protocol"])} (protocol v{_e(block["protocol_version"])}) · '
               f'selection: {_e(selection)} · suite: {_e(block["suite"] or "-")}')
    tables = "".join(board_table(block_index, block, m) for m in METRICS)
    notes = "".join(f"<li>{_e(n)}</li>" for n in block["notes"])
    missing = "".join(f"<li>{_e(g['model'])} on {_e(g['column'])}, {_e(g['unit'])}: "
                      f"{_e(g['reason'])}</li>" for g in block["missing"])
    figures = "".join(f'<figure><img src="{_e(f["file"])}" alt="{_e(f["caption"])}" '
                      f'loading="lazy"><figcaption>{_e(f["caption"])}</figcaption></figure>'
                      for f in block["figures"])
    columns = sorted({c["column"] for c in block["cells"]})
    return (f'<section class="block" id="block-{block_index}" data-protocol="'
            f'{_e(block["protocol"])}" data-columns="{_e(json.dumps(columns))}">'
            f'<h2>{heading}</h2><p class="meta">Test: {_e(block["test"])}; adjustment: '
            f'{_e(block["adjustment"])} over {_e(block["family"])}, alpha {block["alpha"]}.</p>'
            f'{tables}'
            + (f'<ul class="notes">{notes}</ul>' if notes else "")
            + (f'<h3>Units without a result</h3><ul>{missing}</ul>' if missing else "")
            + "".join(text_table(t) for t in block["tables"]) + routing_heatmaps(block)
            + (f'<div class="figures">{figures}</div>' if figures else "")
            + f'<h3>Units of each cell</h3>{units_details(block_index, block, runs_link)}'
            + "</section>")


def provenance_section(data: dict, runs_link: str | None) -> str:
    facts = data["provenance"]
    items = []
    if facts is not None:
        items.append(f"{facts['units']} units; code: "
                     + ", ".join(f"<code>{_e(v['version'])}</code> ({v['units']} units)"
                                 for v in facts["code_versions"]))
        items += [f"{_e(m['machine'])}: {m['unit_minutes']:.1f} min of unit wall time"
                  for m in facts["machines"]]
        items.append("protocols: " + ", ".join(_e(p) for p in facts["protocols"]))
        items += [f"CPU arithmetic {_e(a['arithmetic'])}: {a['units']} units"
                  for a in facts["arithmetic"]]
    noise = data["rerun_noise"]
    items.append("verdicts not re-tested under rerun noise" if noise is None else
                 f"verdicts re-tested {noise['draws']} times under rerun noise from "
                 f"{_e(noise['source'])}; given again in under {noise['stable_share']:.0%}: "
                 f"fragile, a hollow marker (△/▽) or ◇ where a rerun may add one")
    items.append(f"made from leaderboard.json, format version {data['format_version']}"
                 + (f"; unit links relative to the runs folder at <code>{_e(runs_link)}</code>"
                    if runs_link else "; no runs folder linked"))
    failed = "".join(f"<li>{_e(f['model'])} on {_e(f['dataset'])} (suite {_e(f['suite'])}): "
                     f"{_e(f['unit'])} ({_e(f['kind'])}: {_e(f['message'])})</li>"
                     for f in data["failed_without_table"])
    return ('<section id="provenance"><h2>Provenance</h2><ul>'
            + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
            + (f"<h3>Failed units with no table</h3><ul>{failed}</ul>" if failed else "")
            + "</section>")


def _options(values: list[str]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def page_html(data: dict, runs_link: str | None = None) -> str:
    """The page of a current-format ``leaderboard.json`` document."""
    blocks = data["blocks"]
    sections = "".join(
        f'<section class="preface"><h2>{_e(s["title"])}</h2>'
        + (f"<p>{_e(s['text'])}</p>" if s["text"] else "")
        + (text_table(s["table"]) if s["table"] else "")
        + (f"<p>{_e(s['after'])}</p>" if s["after"] else "") + "</section>"
        for s in data["sections"])
    datasets = sorted({c["column"] for b in blocks for c in b["cells"]})
    kinds = sorted({kind_label(c["kind"]) for b in blocks for c in b["cells"]}
                   | ({"published"} if any(b["published"] for b in blocks) else set()))
    protocols = sorted({b["protocol"] for b in blocks})
    filters = (
        '<form id="filters" hidden><label>dataset <select id="filter-dataset"><option value="">'
        f'all</option>{_options(datasets)}</select></label> <label>model kind <select '
        f'id="filter-kind"><option value="">all</option>{_options(kinds)}</select></label> '
        '<label>protocol <select id="filter-protocol"><option value="">all</option>'
        f'{_options(protocols)}</select></label></form>')
    body = "".join(block_section(i, b, runs_link) for i, b in enumerate(blocks))
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1">'
            + (f'<meta name="lifeiqa-runs" content="{_e(runs_link)}">' if runs_link else "")
            + f'<title>{_e(data["title"])}</title>'
            f'<style>{STYLE}</style></head><body><header><h1>{_e(data["title"])}</h1><p>'
            f'Reference model: {_e(data["reference"] or "-")}. Cells: median [order-statistic '
            f'interval] over units, n; hover a cell for its interval and p-values, follow n to '
            f'its units; click a column header to sort.</p>{filters}</header><main>{sections}'
            f'{body}{provenance_section(data, runs_link)}</main><script>{SCRIPT}</script>'
            f'</body></html>\n')


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.3em 0}
caption .scale{font-weight:400;color:#666;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
thead th{background:#f2f4f7}
tr.reference th,tr.reference td{background:#fff8e1}
tr.published th,tr.published td{color:#555;font-style:italic}
abbr.ref{font-size:.75em;background:#f0c040;border-radius:3px;padding:0 .3em;
  text-decoration:none;margin-left:.4em}
svg.ci{display:block;margin-top:2px}svg.ci line{stroke:#4c72b0;stroke-width:2}
svg.ci rect{fill:#222}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer}
th[aria-sort=descending] button::after{content:" \\25BC"}
th[aria-sort=ascending] button::after{content:" \\25B2"}
ul.notes{font-size:.9em;color:#444}
.figures{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;max-width:48%}figure img{max-width:100%}
figcaption{font-size:.85em;color:#555}
details{margin:.2em 0}summary{cursor:pointer}
#filters{margin:.5em 0;display:flex;gap:1em}
[hidden]{display:none!important}
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var value = cell.getAttribute("data-value");
    if (value === null) { return cell.textContent.trim(); }
    if (value === "" || value === "-") { return null; }
    var number = parseFloat(value);
    return isNaN(number) ? value : number;
  }
  function compare(a, b, descending) {
    if (a === null || b === null) { return a === b ? 0 : (a === null ? 1 : -1); }
    var order = typeof a === "number" && typeof b === "number" ? a - b
      : String(a).localeCompare(String(b));
    return descending ? -order : order;
  }
  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var descending = th.getAttribute("aria-sort") !== "descending";
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var body = table.tBodies[0];
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      return compare(key(a.cells[index]), key(b.cells[index]), descending);
    }).forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.sortable thead th[data-sort]").forEach(function (th) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    button.title = "sort by " + th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(th.closest("table"), th); });
  });
  var form = document.getElementById("filters");
  var dataset = document.getElementById("filter-dataset");
  var kind = document.getElementById("filter-kind");
  var protocol = document.getElementById("filter-protocol");
  function apply() {
    document.querySelectorAll("section.block").forEach(function (block) {
      var columns = JSON.parse(block.getAttribute("data-columns"));
      block.hidden = (protocol.value && block.getAttribute("data-protocol") !== protocol.value)
        || (dataset.value && columns.indexOf(dataset.value) < 0);
      block.querySelectorAll("table.board [data-column]").forEach(function (cell) {
        cell.hidden = Boolean(dataset.value) && cell.getAttribute("data-column") !== dataset.value;
      });
      block.querySelectorAll("table.board tbody tr").forEach(function (row) {
        row.hidden = Boolean(kind.value) && row.getAttribute("data-kind") !== kind.value;
      });
    });
  }
  [dataset, kind, protocol].forEach(function (select) { select.addEventListener("change", apply); });
  form.hidden = false;
}());
"""
