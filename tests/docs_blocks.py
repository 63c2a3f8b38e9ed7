"""The shell and Python blocks of the README and the documentation site, as data: each block
with its page, line, language and the marker that says why it is not run, if any.

A block is run by tests/test_docs_blocks.py unless the line before it is a marker
``<!-- docs-test: needs WHAT ... -->`` (real data, a GPU, a cluster, the network, an install,
a long run) or ``<!-- docs-test: elsewhere PATH ... -->`` (a test or CI step that
runs the same command; each path must exist)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
NEEDS = ("real data", "a GPU", "a cluster", "the network", "an install", "a long run")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<kind>needs|elsewhere)\s+(?P<reason>.*?)\s*-->")
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    language: str  # "bash" or "python"
    code: str
    skip: str | None  # the marker's text when the block is not run here

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


class MarkerError(ValueError):
    """A docs-test marker that does not say what a block needs or where it runs."""


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _marker(previous: str, where: str) -> str | None:
    if "docs-test" not in previous:
        return None
    found = _MARKER.search(previous)
    if not found:
        raise MarkerError(f"{where}: malformed marker {previous.strip()!r}")
    reason = found["reason"]
    if found["kind"] == "needs" and not reason.startswith(NEEDS):
        raise MarkerError(f"{where}: 'needs' must say one of {', '.join(NEEDS)}; got {reason!r}")
    if found["kind"] == "elsewhere":
        paths = re.findall(r"(?:tests/\S+?\.py|\.ci/run)", reason)
        if not paths:
            raise MarkerError(f"{where}: 'elsewhere' must name the test or CI step that runs it")
        for path in paths:
            if not (ROOT / path).exists():
                raise MarkerError(f"{where}: {path} does not exist")
    return f"{found['kind']} {reason}"


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page)


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        language = RUN_LANGUAGES.get(fence["lang"])
        where = f"{_name(page)}:{index + 1}"
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        skip = _marker(previous, where)
        if language:
            indent = len(fence["indent"])
            code = "\n".join(line[indent:] for line in lines[index + 1:end]) + "\n"
            found.append(Block(_name(page), index + 1, language, code, skip))
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]
