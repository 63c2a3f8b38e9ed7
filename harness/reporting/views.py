"""What a leaderboard shows besides its main tables, as data: a titled table of strings with its
notes, a figure file with its caption, a section of the page. Each is built once and written
both to the markdown and to ``leaderboard.json`` (from which the HTML page is made), so the
three cannot show different text; ``from_json`` reads each back from the document, so the markdown
is a rendering of it (:mod:`harness.reporting.board_markdown`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    """A table as shown: every cell already formatted as text."""

    title: str  # "" for none
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    subtitle: str = ""  # after the bold title, in the same line: "(median [interval] over splits)"
    heatmap: bool = False  # its numbers are comparable across cells: the page colours them

    def markdown(self) -> str:
        from tabulate import tabulate

        heading = f"**{self.title}**" + (f" {self.subtitle}" if self.subtitle else "")
        table = tabulate(self.rows, headers=self.headers, tablefmt="github", disable_numparse=True)
        notes = "".join(f"- {note}\n" for note in self.notes)
        return (f"{heading}\n\n" if self.title else "") + f"{table}\n" + \
            (f"\n{notes}" if notes else "")

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "subtitle": self.subtitle, "headers": self.headers,
                "rows": self.rows, "notes": self.notes, "heatmap": self.heatmap}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        return cls(data["title"], data["headers"], data["rows"], data["notes"], data["subtitle"],
                   data["heatmap"])


@dataclass(frozen=True)
class Figure:
    """A figure file, relative to the leaderboard's folder (``figures/...png``)."""

    caption: str
    file: str

    def markdown(self) -> str:
        return f"![{self.caption}]({self.file})\n"

    def to_json(self) -> dict[str, str]:
        return {"caption": self.caption, "file": self.file}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        return cls(data["caption"], data["file"])


@dataclass(frozen=True)
class Section:
    """A part of the page before the protocols' blocks (the demo's resolution goals): a heading,
    a paragraph, a table and a closing paragraph, each optional but the heading."""

    title: str
    text: str = ""
    table: Table | None = None
    after: str = ""

    def markdown(self) -> str:
        parts = [f"## {self.title}\n", self.text and f"{self.text}\n",
                 self.table.markdown() if self.table else "", self.after and f"{self.after}\n"]
        return "\n".join(part for part in parts if part)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "text": self.text,
                "table": self.table.to_json() if self.table else None, "after": self.after}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        table = data["table"]
        return cls(data["title"], data["text"], None if table is None else Table.from_json(table),
                   data["after"])
