"""The data files the harness reads at run time: the protocols (with the frozen split files)
and the published scores.

They live in the repository's top-level ``protocols/`` and ``leaderboards/``, which is where a
checkout or an editable install reads them. A built wheel has no such folders beside the
package, so the build copies them into it (``harness/_assets/``, setup.py), and this module
finds the packaged copy first (through :mod:`importlib.resources`), then the checkout's.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def asset_dir(name: str) -> Path:
    """The folder ``name`` (``protocols`` or ``leaderboards``) as this installation has it."""
    packaged = Path(str(resources.files("harness") / "_assets" / name))
    return packaged if packaged.is_dir() else CHECKOUT / name
