"""Docs that run: every shell and Python block of the README and of docs/ runs here, page by
page in order, in a fresh folder, offline; a block that needs what CI lacks (real data, a GPU,
a cluster, the network, an install, a long run) carries a marker saying so, or names the test
that runs it (tests/docs_blocks.py). Every ``lifeiqa-bench`` command in any block, run or
not, is parsed by the real argument parser, and every ``make`` target exists."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import ROOT, Block, MarkerError, all_blocks, blocks, pages

from harness.cli import build_parser

BIN = Path(sys.executable).parent
# what a block may refer to by a path relative to the repository root
LINKED = ("examples", "protocols", "leaderboards")
_SEGMENT_END = re.compile(r"\s(?:&&|\|\||;|\|)\s")
_REDIRECT = re.compile(r"^(?:\d?>>?|<|&|\d?>&\d)")


def _commands(code: str) -> list[list[str]]:
    """The simple commands of a shell block: continuation lines joined, comments dropped,
    split at ``&&``, ``;`` and pipes, redirections and a trailing ``&`` cut off."""
    text = code.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        for segment in _SEGMENT_END.split(f" {line} "):
            words = shlex.split(segment, comments=True)
            cut = next((i for i, w in enumerate(words) if _REDIRECT.match(w)), len(words))
            if words[:cut]:
                commands.append(words[:cut])
    return commands


def _bench_arguments(words: list[str]) -> list[str] | None:
    """The arguments ``lifeiqa-bench`` gets from a command, or None if it is another program
    (``torchrun ... -m harness.cli ARGS`` counts)."""
    program = Path(words[0]).name
    if program == "lifeiqa-bench":
        return words[1:]
    if "harness.cli" in words and words[words.index("harness.cli") - 1] == "-m":
        return words[words.index("harness.cli") + 1:]
    return None


@functools.cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


def _parse_error(arguments: list[str]) -> str | None:
    if arguments and arguments[0].startswith("--protocol"):  # the shorthand main() accepts
        arguments = ["run", *arguments]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            _parser().parse_args(arguments)
        except SystemExit as stop:
            return stderr.getvalue().strip() or f"exit {stop.code}"
    return None


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def test_every_block_is_run_or_says_why_not():
    found = all_blocks()  # raises MarkerError on a marker that says nothing checkable
    run = [b for b in found if b.skip is None]
    # a block marked "elsewhere" runs in the test it names; only those that need what CI lacks
    # go unrun
    unrun = [b for b in found if b.skip and b.skip.startswith("needs")]
    assert len(run) >= 18 and len(unrun) <= 12, (len(run), len(unrun))
    assert {b.page for b in run} >= {"README.md", "docs/tutorials/score-images.md",
                                     "docs/tutorials/plugins.md", "docs/tutorials/own-dataset.md"}


def test_a_marker_must_say_what_is_needed_or_where_it_runs(tmp_path):
    for marker, problem in (("<!-- docs-test: skip -->", "malformed marker"),
                            ("<!-- docs-test: needs patience -->", "'needs' must say one of"),
                            ("<!-- docs-test: elsewhere somewhere -->", "must name the test"),
                            ("<!-- docs-test: elsewhere tests/test_gone.py -->", "does not exist")):
        page = tmp_path / "probe.md"
        page.write_text(f"# probe\n\n{marker}\n```bash\ntrue\n```\n")
        with pytest.raises(MarkerError, match=problem):
            blocks(page)


def test_every_command_in_every_block_parses_and_every_make_target_exists():
    targets = _make_targets()
    checked = 0
    for block in all_blocks():
        if block.language != "bash":
            continue
        for words in _commands(block.code):
            if words[0] == "make":
                assert set(words[1:]) <= targets, f"{block.where}: no such make target: {words}"
                continue
            arguments = _bench_arguments(words)
            if arguments is None:
                continue
            error = _parse_error(arguments)
            assert error is None, f"{block.where}: {shlex.join(words)}\n{error}"
            checked += 1
    assert checked >= 40, checked


def test_the_parse_check_catches_a_flag_that_does_not_exist():
    assert _parse_error(["run", "--protocol", "splits", "--no-such-flag"]) is not None
    assert _parse_error(["--protocol", "splits", "--splits", "2"]) is None


def test_blocks_not_run_are_valid_python():
    for block in all_blocks():
        if block.language == "python" and block.skip:
            compile(block.code, block.where, "exec")


def _run(block: Block, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if block.language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        command = [sys.executable, "-c", block.code]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("page", [str(p.relative_to(ROOT)) for p in pages()])
def test_the_blocks_of_a_page_run_in_order(page, tmp_path):
    runnable = [b for b in blocks(ROOT / page) if b.skip is None]
    if not runnable:
        pytest.skip(f"{page} has no block that runs offline")
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    # the session's data cache (conftest.py): the pages read the same tiny sets as other tests
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "LIFEIQA_WEIGHTS_DIR": str(tmp_path / ".weights")}
    for block in runnable:
        done = _run(block, tmp_path, env)
        assert done.returncode == 0, (f"{block.where} failed (exit {done.returncode}):\n"
                                      f"{block.code}\n--- stdout\n{done.stdout[-3000:]}\n"
                                      f"--- stderr\n{done.stderr[-3000:]}")
