"""Plug-ins: code outside the harness that adds models or datasets to its registries.

Two ways in, as lm-evaluation-harness has them:

* an installed distribution's **entry point**, in group :data:`MODEL_GROUP` or
  :data:`DATASET_GROUP`: a module (importing it registers what it defines) or a callable taking
  no arguments (calling it registers). Each process loads a group itself, once, on the first
  lookup its registry cannot answer from the built-ins, so pool workers, Slurm tasks and a later
  ``summarize`` see what the launching process saw;
* :func:`include`: a module name or a ``.py`` file that is not installed (``--include``),
  imported once per process; a run that sends jobs to other processes hands them the includes.

While a plug-in loads, :func:`loading` names it, so whatever it registers records the plug-in's
name and version (:class:`PluginInfo`), and every unit of its models says which code made it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harness.errors import PluginError

MODEL_GROUP = "lifeiqa_bench.models"
DATASET_GROUP = "lifeiqa_bench.datasets"
# How a process gets a plug-in's registrations: it loads installed entry points itself; an
# included or imported module must be imported again; a script's __main__ cannot be.
ORIGINS = ("entry_point", "module", "main")


@dataclass(frozen=True)
class PluginInfo:
    """Where registered code came from: the distribution (or module) name and version (the
    distribution's version, else ``sha256:`` and 12 hex digits of the module's file),
    ``origin`` (one of :data:`ORIGINS`) and, for a module, what another process imports to
    register it again (``include``: a module name or a ``.py`` path)."""

    name: str
    version: str
    origin: str = "module"
    include: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version, "origin": self.origin,
                "include": self.include}


_groups: dict[str, tuple[PluginInfo, ...]] = {}
_failed: dict[str, PluginError] = {}  # a group whose loading failed fails every lookup alike
_included: dict[str, PluginInfo] = {}
_loading: list[PluginInfo] = []


def loading() -> PluginInfo | None:
    """The plug-in being loaded now (its registrations are its), or None."""
    return _loading[-1] if _loading else None


@contextmanager
def _as(info: PluginInfo) -> Iterator[None]:
    _loading.append(info)
    try:
        yield
    finally:
        _loading.pop()


def load_group(group: str) -> tuple[PluginInfo, ...]:
    """Load every installed entry point of ``group`` (once per process); the plug-ins loaded.
    One that fails raises :class:`PluginError` naming it, its entry point and the error."""
    if group in _failed:
        raise _failed[group]
    if group in _groups:
        return _groups[group]
    _groups[group] = ()  # a plug-in that looks a name up while it loads must not recurse
    found = []
    for point in sorted(importlib.metadata.entry_points(group=group), key=lambda p: p.name):
        dist = point.dist
        info = PluginInfo(dist.name if dist else point.module,
                          dist.version if dist else "unknown", "entry_point")
        with _as(info):
            try:
                loaded = point.load()
                if callable(loaded) and not isinstance(loaded, ModuleType):
                    loaded()
            except Exception as err:
                _failed[group] = err if isinstance(err, PluginError) else PluginError(
                    f"plug-in {info.label} (entry point {point.name} = {point.value}, group "
                    f"{group}) failed to load: {type(err).__name__}: {err}")
                raise _failed[group] from err
        found.append(info)
    _groups[group] = tuple(found)
    return _groups[group]


def _file_version(path: str | Path | None) -> str:
    if path is None or not Path(path).is_file():
        return "unknown"
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _distribution(module: str) -> importlib.metadata.Distribution | None:
    names = importlib.metadata.packages_distributions().get(module.split(".")[0], [])
    for name in names:
        try:
            return importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def describe_module(module: str) -> PluginInfo:
    """The provenance of code defined in ``module``: its distribution's name and version when
    it is installed, else the module and the hash of its file (``__main__``: a script, which no
    other process can import)."""
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if module == "__main__":
        return PluginInfo(Path(file).name if file else "__main__", _file_version(file), "main")
    dist = _distribution(module)
    if dist is not None:
        return PluginInfo(dist.metadata["Name"], dist.version, "module", module)
    return PluginInfo(module, _file_version(file), "module", module)


def include(target: str) -> PluginInfo:
    """Import ``target`` (a module name, or a path to a ``.py`` file) once per process, as a
    plug-in; what it registers records it. A missing or failing module raises PluginError."""
    path = Path(target).expanduser()
    is_file = target.endswith(".py") or path.is_file()
    key = str(path.resolve()) if is_file else target
    if key in _included:
        return _included[key]
    if is_file:
        if not path.is_file():
            raise PluginError(f"--include {target}: no such file")
        # a module of a package folder is named with its package, as an import would name it
        package = path.parent.name + "." if (path.parent / "__init__.py").is_file() else ""
        info = PluginInfo(package + path.stem, _file_version(path), "module", key)
    else:
        error: ImportError | ValueError | None
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError) as err:
            spec, error = None, err
        else:
            error = None
        if spec is None:
            raise PluginError(f"--include {target}: no module of that name can be imported"
                              + (f" ({error})" if error else "")
                              + "; give an importable module name or a path to a .py file")
        dist = _distribution(target)
        info = PluginInfo(dist.metadata["Name"] if dist else target,
                          dist.version if dist else _file_version(spec.origin), "module", target)
    with _as(info):
        try:
            if is_file:
                spec = importlib.util.spec_from_file_location(path.stem, path)
                if spec is None or spec.loader is None:  # a file no module loader takes (not .py)
                    raise ImportError(f"no module loader takes {path.name}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module  # so its classes pickle by reference
                spec.loader.exec_module(module)
            else:
                importlib.import_module(target)
        except PluginError:
            raise
        except Exception as err:
            raise PluginError(f"--include {target}: importing it failed: "
                              f"{type(err).__name__}: {err}") from err
    _included[key] = info
    return info


def include_all(targets: tuple[str, ...] | list[str]) -> None:
    """:func:`include` each target (what a worker process does before it rebuilds its jobs)."""
    for target in targets:
        include(target)
