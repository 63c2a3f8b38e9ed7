"""``leaderboard.md`` as a rendering of ``leaderboard.json``: the markdown is made from the
document alone, as the HTML page is (:mod:`harness.reporting.html_page`), so the two cannot
disagree with the numbers behind them.

The document is one of the current format version (:func:`~harness.reporting.leaderboard_format.
read_leaderboard_document` migrates older files); its blocks list their cells in row order, so
the rows read in the same order here and on the page. Each cell is formatted by the functions
the page uses (:func:`~harness.results.aggregate.interval_text`,
:func:`~harness.results.aggregate.cell_display`).
"""

from __future__ import annotations

from typing import Any

from harness.reporting.views import Figure, Section, Table
from harness.results.aggregate import SELECTION_LABELS, cell_display, interval_text, kind_label

METRICS = {"srcc": "SRCC", "plcc": "PLCC"}


def board_markdown(document: dict[str, Any]) -> str:
    """The markdown leaderboard of ``document`` (a ``leaderboard.json`` of the current format)."""
    parts = [f"# {document['title']}\n",
             *(Section.from_json(section).markdown() for section in document["sections"])]
    for block in document["blocks"]:
        parts += block_markdown(block)
    orphans = document["failed_without_table"]
    if orphans:
        parts.append("## Failed units with no table\n")
        parts.append("\n".join(f"- {f['model']} on {f['dataset']} ({_protocol(f)}, suite "
                               f"{f['suite']}): {f['unit']} ({f['kind']}: {f['message']})"
                               for f in orphans) + "\n")
    parts.append(footer(document["provenance"]))
    return "\n".join(parts) + "\n"


def _protocol(failure: dict[str, Any]) -> str:
    if failure["protocol"] is None:  # a file of format 5 or older did not record it
        return "protocol not recorded"
    return f"{failure['protocol']} v{failure['protocol_version']}"


def block_markdown(block: dict[str, Any]) -> list[str]:
    """One block's parts: its heading, a table per metric, its notes, further tables and
    figures."""
    selection = SELECTION_LABELS.get(block["selection"], block["selection"])
    parts = [f"## {block['protocol']} (protocol v{block['protocol_version']}) · selection: "
             f"{selection} · suite: {block['suite'] or '-'}\n"]
    for metric, label in METRICS.items():
        kind = f" ({block['plcc']})" if metric == "plcc" else ""
        parts.append(f"**{label}**{kind}, median [interval] over units, n per cell; "
                     f"reference: {block['reference'] or '-'}\n")
        parts.append(metric_table(block, metric))
        parts.append("")
    parts.append("\n".join(f"- {note}" for note in block["notes"]) + "\n")
    parts += [Table.from_json(table).markdown() for table in block["tables"]]
    parts += [Figure.from_json(figure).markdown() for figure in block["figures"]]
    return parts


def cell_markdown(cell: dict[str, Any], metric: str, expected: int,
                  comparison: dict[str, Any] | None) -> str:
    """A cell as the tables show it: ``median [interval] n=8/10 ▲ †``."""
    summary = cell[metric]
    low, high = summary["interval"]
    interval = interval_text(summary["median"], low, high, cell["n"], summary["coverage"])
    return cell_display(interval, cell["n"], expected, comparison["marker"] if comparison else "",
                        cell["not_zero_shot"])


def metric_table(block: dict[str, Any], metric: str) -> str:
    """The block's table of ``metric``: a row per model (per config where a model has several)
    in the document's order, a column per dataset or pair, then the published rows."""
    from tabulate import tabulate

    columns = sorted({c["column"] for c in block["cells"]})
    compared = {(c["model"], c["column"], c["config_hash"]): c
                for c in block["comparisons"].get(metric, [])}
    rows: dict[str, dict[str, str]] = {}
    for cell in block["cells"]:
        row = rows.setdefault(cell["row"], {"model": cell["row"], "kind": kind_label(cell["kind"]),
                                            **dict.fromkeys(columns, "-")})
        row[cell["column"]] = cell_markdown(
            cell, metric, block["expected_units"][cell["column"]],
            compared.get((cell["model"], cell["column"], cell["config_hash"])))
    published = [p for p in block["published"] if p["metric"] == metric]
    for name in sorted({p["model"] for p in published}):
        values: dict[str, str] = {}
        for value in published:  # the first number of a model and column, as listed
            if value["model"] == name:
                values.setdefault(value["column"], f"{value['value']:.3f}")
        if any(column in values for column in columns):
            rows[f"{name} (published)"] = {"model": f"{name} (published)", "kind": "published",
                                           **{c: values.get(c, "-") for c in columns}}
    return tabulate(list(rows.values()), headers="keys", tablefmt="github", disable_numparse=True)


def _units(count: int) -> str:
    return f"{count} unit{'s' * (count != 1)}"


def footer(provenance: dict[str, Any] | None) -> str:
    """Where and from which code the units ran (the document's ``provenance``); a file of
    format 2 or older did not record it."""
    if provenance is None:
        return "Hardware, wall time and code versions: not recorded (a leaderboard.json of " \
               "format version 2 or older)."
    code = ", ".join(f"{v['version']} ({_units(v['units'])})" for v in provenance["code_versions"])
    lines = [f"- {m['machine']}: {m['unit_minutes']:.1f} min of unit wall time"
             for m in provenance["machines"]]
    caution = ("; the units come from more than one code version, so a difference between rows "
               "may be a difference in code" if len(provenance["code_versions"]) > 1 else "")
    kernels = "; ".join(f"{a['arithmetic']} ({_units(a['units'])})"
                        for a in provenance["arithmetic"])
    made = "".join(f"\n- {p['model']}: plug-in {p['plugin']} ({_units(p['units'])})"
                   for p in provenance["plugins"])
    return ("Hardware and wall time (sum over units; units run one after another unless an "
            "executor ran them in parallel):\n\n" + "\n".join(lines)
            + f"\n\n{provenance['units']} units; code: {code}{caution}; CPU arithmetic: {kernels}."
            + (f"\n\nModels from plug-ins (their code is not this repository's):\n{made}"
               if made else ""))
