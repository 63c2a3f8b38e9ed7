"""A registry of named entries, shared by lifeiqa's presets and the harness's models and datasets.

Each user picks its errors (each package has its own typed ones) and how names compare; the
registry keeps the rules alike: a name or alias that would shadow a registered one, or be
shadowed by it, is refused, and an unknown name is answered with the close registered ones.
It sits below everything in lifeiqa, and imports nothing of it, so the harness may use it too.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


def unknown_message(kind: str, name: str, known: Iterable[str]) -> str:
    """``unknown KIND 'name'``, then up to 3 close names among ``known``, then all of them."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    return f"unknown {kind} {name!r}{hint} Known: {', '.join(known)}"


def _never(new: object, known: object) -> bool:
    return False


def _as_is(name: str) -> str:
    return name


@dataclass(frozen=True)
class Registry(Generic[T]):
    """Entries by name, in registration order (the order a table of them lists rows in).

    ``unknown(kind, name, names)`` is the error :meth:`get` raises; ``taken(name, new, known)``
    the one :meth:`register` raises for a name or alias whose key ``known`` holds, unless
    ``replaces(new, known)`` and both have the same name. ``key`` is how lookups compare names.
    """

    kind: str  # what an entry is, in messages ("dataset")
    unknown: Callable[[str, str, list[str]], Exception]
    taken: Callable[[str, T, T], Exception]
    key: Callable[[str], str] = _as_is
    replaces: Callable[[T, T], bool] = _never
    _entries: dict[str, T] = field(default_factory=dict, init=False, repr=False)
    _owners: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # key -> name

    def register(self, name: str, entry: T, aliases: Iterable[str] = ()) -> T:
        """Add ``entry`` under ``name`` and ``aliases``; returns it."""
        labels = (name, *aliases)
        known = self._entries.get(name)
        # the same owner registering again (a module imported twice) takes back its own place
        replacing = known is not None and self.replaces(entry, known)
        for label in labels:
            owner = self._owners.get(self.key(label))
            if owner is not None and not (replacing and owner == name):
                raise self.taken(label, entry, self._entries[owner])
        if replacing:  # the aliases it had go with it
            for key in [key for key, owner in self._owners.items() if owner == name]:
                del self._owners[key]
        self._entries[name] = entry
        self._owners.update({self.key(label): name for label in labels})
        return entry

    def get(self, name: str) -> T:
        """The entry ``name`` (or an alias) finds; else the ``unknown`` error, naming them all."""
        owner = self._owners.get(self.key(name))
        if owner is None:
            raise self.unknown(self.kind, name, self.names())
        return self._entries[owner]

    def names(self, pattern: str = "*") -> list[str]:
        """The registered names (aliases aside) matching a shell-style ``pattern``, in order."""
        return [name for name in self._entries if fnmatch.fnmatchcase(name, pattern)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.key(name) in self._owners

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
