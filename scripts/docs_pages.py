"""The documentation site's generated pages (run by mkdocs-gen-files during ``mkdocs build``).

Each page is made from the thing it documents, so it cannot drift from it: the command line
from the argparse parser itself, the protocols, recipes, presets, models and datasets from
their registries (``harness.api.catalog``, what ``lifeiqa-bench list`` prints), the file
formats from the JSON Schemas the harness validates with, and the committed demo board, the
speed figures and CONTRIBUTING.md from their files in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
# argparse wraps help text to the terminal's width; a fixed width keeps the page the same
# wherever it is built
HELP_WIDTH = "100"

REGISTRIES = (
    ("protocols", "Protocols", "The packaged protocols (`protocols/*.yaml`); a run also takes a "
                               "YAML path of one's own."),
    ("recipes", "Recipes", "Named training recipes; any field can be changed with `--set "
                           "FIELD=VALUE` (`overrides=` in Python)."),
    ("presets", "Presets", "Life-IQA presets (`lifeiqa.list_models()`), the `model` of a run."),
    ("models", "Models", "Every row a protocol can run beside Life-IQA's variants: built-ins "
                         "and installed plug-ins."),
    ("datasets", "Datasets", "The built-in datasets, their score scales and sizes."),
)

SCHEMAS = (("harness.results", "result.schema.json", "result.json: one unit"),
           ("harness.reporting", "leaderboard.schema.json", "leaderboard.json: one board"))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_page() -> str:
    from harness.cli import build_parser

    os.environ["COLUMNS"] = HELP_WIDTH
    parser = build_parser()
    parts = ["# Command line\n\n`lifeiqa-bench`'s help, printed by its own parser when this "
             "site was built. `lifeiqa-bench COMMAND --help` prints the same.\n\n",
             f"```text\n{parser.format_help()}```\n"]
    for name, sub in _subcommands(parser).items():
        parts.append(f"\n## {name}\n\n```text\n{sub.format_help()}```\n")
    return "".join(parts)


def _cell(value: Any) -> str:
    text = "" if value is None else ", ".join(map(str, value)) if isinstance(value, list) \
        else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def registries_page() -> str:
    from harness.api import catalog

    parts = ["# Protocols, recipes, presets, models, datasets\n\nWhat a run can name, read from "
             "the registries when this site was built (`lifeiqa-bench list WHAT --json` gives "
             "the same rows, plug-ins included).\n"]
    for what, title, intro in REGISTRIES:
        rows = catalog(what, ())
        headers = list(rows[0])
        parts.append(f"\n## {title}\n\n{intro}\n\n| {' | '.join(headers)} |\n"
                     f"|{'---|' * len(headers)}\n")
        parts.extend(f"| {' | '.join(_cell(row[h]) for h in headers)} |\n" for row in rows)
    return "".join(parts)


def _schema_rows(schema: dict[str, Any], defs: dict[str, Any], path: str,
                 seen: frozenset[str] = frozenset()) -> Iterator[tuple[str, str, str]]:
    """(field path, type, meaning) of every property, nested ones after their parent; a
    definition (``$defs``) is expanded once per path, so a recursive one ends."""
    for name, spec in schema.get("properties", {}).items():
        field = f"{path}{name}"
        array = spec.get("type") == "array"
        ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
        definition = ref.rsplit("/", 1)[-1] if ref else None
        types = spec.get("type") or ("const" if "const" in spec else "")
        kind = "/".join(types) if isinstance(types, list) else types
        if definition:
            kind = f"{kind} of {definition}" if kind else definition
        target = defs.get(definition, {}) if definition else {}
        yield field, kind, spec.get("description") or target.get("description", "")
        if definition in seen:
            continue
        inner = target if definition else spec.get("items", spec) if array else spec
        yield from _schema_rows(inner, defs, field + ("[]." if array else "."),
                                seen | {definition} if definition else seen)


def schemas_page() -> str:
    parts = ["# File formats\n\nThe fields of `result.json` (one per unit) and `leaderboard.json` "
             "(one per board), read from the JSON Schemas (draft 2020-12) that the harness "
             "validates every file with; the schemas themselves ship in the package.\n"]
    for package, name, title in SCHEMAS:
        schema = json.loads(resources.files(package).joinpath(name).read_text())
        version = schema["properties"].get("schema_version", schema["properties"].get(
            "format_version", {})).get("const")
        parts.append(f"\n## {title}\n\n`{package.replace('.', '/')}/{name}`, version {version}. "
                     f"{schema.get('description', '')}\n\n| field | type | meaning |\n|---|---|---|\n")
        parts.extend(f"| `{field}` | {_cell(kind)} | {_cell(text)} |\n"
                     for field, kind, text in _schema_rows(schema, schema.get("$defs", {}), ""))
    return "".join(parts)


def copy_file(source: Path, target: str) -> None:
    with mkdocs_gen_files.open(target, "wb") as out:
        out.write(source.read_bytes())
    if target.endswith(".md"):
        mkdocs_gen_files.set_edit_path(target, source.relative_to(ROOT).as_posix())


def write(target: str, text: str) -> None:
    with mkdocs_gen_files.open(target, "w") as out:
        out.write(text)


def main() -> None:
    write("reference/cli.md", cli_page())
    write("reference/registries.md", registries_page())
    write("reference/formats.md", schemas_page())
    board = ROOT / "leaderboards" / "synthetic"
    copy_file(board / "leaderboard.md", "demo-board/leaderboard.md")
    copy_file(board / "index.html", "demo-board/page.html")
    for figure in sorted((board / "figures").glob("*.png")):
        copy_file(figure, f"demo-board/figures/{figure.name}")
    copy_file(ROOT / "leaderboards" / "speed.md", "performance/speed-figures.md")
    copy_file(ROOT / "CONTRIBUTING.md", "contributing.md")


main()
