"""The architecture as the tree shows it: which sub-package may import which, no import cycles,
and the command line as the only place that parses arguments or ends the process.

Every import counts, module-level or inside a function (a function-level import hides a cycle,
it does not remove it). Imports under ``if TYPE_CHECKING:`` never run, so the layer rule leaves
them out; the cycle rule counts them, since a type that two modules need of each other is a
circle in the design all the same.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each layer of the harness and the layers it may import (CONTRIBUTING.md's map says why).
BASE = ("harness.errors", "harness.fileio", "harness.device", "harness.logs", "harness.plugins",
        "harness.arithmetic", "harness.assets")
ALLOWED = {
    "base": set(),
    "data": {"base"},
    "plan": {"base", "data"},
    "results": {"base", "data", "plan"},
    "engine": {"base", "data", "plan", "results"},
    "reporting": {"base", "data", "plan", "results"},
    "speed": {"base", "data", "plan", "results", "engine"},
    "api": {"base", "data", "plan", "results", "engine", "reporting"},
    "cli": {"base", "data", "plan", "results", "engine", "reporting", "speed", "api"},
}


def layer_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module in ("harness", "harness.api", "harness.demo", "harness.reproduce",
                  "harness.release"):
        return "api"
    return module.split(".")[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, type_only: bool = False) -> set[str]:
    """Modules ``path`` imports (absolute names; relative imports resolved), with those under
    ``if TYPE_CHECKING:`` where ``type_only``."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child) and not type_only:
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found


def graph(package: str, type_only: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of the same top-level package that it imports."""
    modules = {module_name(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: {m for m in imports(path, type_only) if m in modules and m != name}
            for name, path in modules.items()}


def test_each_harness_layer_imports_only_the_layers_below_it():
    violations = []
    for module, targets in graph("harness").items():
        mine = layer_of(module)
        for target in targets:
            theirs = layer_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                violations.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not violations, "\n".join(sorted(violations))


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    # the check itself must be able to fail: a planning module that imports the store
    fake = ROOT / "harness" / "plan" / "_layering_probe.py"
    fake.write_text("from harness.results.store import ResultsStore\n")
    try:
        with pytest.raises(AssertionError, match=r"harness.plan._layering_probe \(plan\) imports "
                                                 r"harness.results.store \(results\)"):
            test_each_harness_layer_imports_only_the_layers_below_it()
    finally:
        fake.unlink()


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


@pytest.mark.parametrize("package", ["harness", "lifeiqa"])
def test_no_import_cycles(package):
    edges = graph(package, type_only=True)
    # a package's __init__ re-exporting its modules is not a cycle with them
    for module in edges:
        edges[module] = {t for t in edges[module] if not module.startswith(t + ".")}
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_cycle_through_a_type_only_import_is_found():
    # the circle harness/data had: sources needed a type of declared's, declared sources' prefix
    folder = ROOT / "harness" / "data"
    first, second = folder / "_cycle_probe_a.py", folder / "_cycle_probe_b.py"
    first.write_text("from harness.data._cycle_probe_b import PREFIX\n")
    second.write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                      "    from harness.data._cycle_probe_a import Declaration\nPREFIX = 'x'\n")
    try:
        with pytest.raises(AssertionError, match=r"harness\.data\._cycle_probe_a -> "
                                                 r"harness\.data\._cycle_probe_b -> "
                                                 r"harness\.data\._cycle_probe_a"):
            test_no_import_cycles("harness")
    finally:
        first.unlink()
        second.unlink()


def test_only_the_cli_parses_arguments_or_ends_the_process():
    offenders = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        if module_name(path).startswith("harness.cli"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else \
                node.attr if isinstance(node, ast.Attribute) else None
            if name in ("SystemExit", "Namespace", "exit") and not (
                    name == "exit" and not ast.unparse(node).startswith(("sys.", "os."))):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
        if "argparse" in imports(path):
            offenders.append(f"{path.relative_to(ROOT)} imports argparse")
    assert not offenders, "\n".join(offenders)


def test_library_code_does_not_print():
    """Only the command line prints; the library logs (silent unless the caller asks)."""
    offenders = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        if module_name(path).startswith("harness.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "\n".join(offenders)


# What a command that trains and scores nothing may not import: torch alone costs it two
# seconds, scipy.stats most of one (the light commands start in under one second).
HEAVY = ("torch", "scipy.stats", "timm", "pyiqa", "matplotlib", "pandas")
LIGHT_COMMANDS = (["list", "models"], ["list", "datasets", "--json"], ["datasets", "list"],
                  ["published", "--dataset", "csiq"], ["list", "recipes"], ["list", "protocols"])


def test_commands_that_train_nothing_start_without_torch():
    """In a fresh interpreter (this one has torch loaded): the listing and reading commands, then
    ``import lifeiqa``, whose model names load on first use."""
    script = ("import sys\nfrom harness.cli import main\n"
              f"codes = [main(argv) for argv in {LIGHT_COMMANDS!r}]\n"
              "import lifeiqa, lifeiqa.errors, lifeiqa.presets\n"
              f"print('RESULT', codes, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
              "assert lifeiqa.create_model('lifeiqa_tiny') is not None and 'torch' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert line == "RESULT [0, 0, 0, 0, 0, 0] []", line
