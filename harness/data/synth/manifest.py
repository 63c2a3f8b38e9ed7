"""A synthetic dataset's manifest (``synth.json``): how it was made, and its content groups.

The real loaders derive a record's content group from its file name (the reference on
KADID-10k and TID2013, the image itself on KonIQ-10k). A synthetic source may give several
references (crops of one photo) or several authentic-style images, so the generator lists the
content group of every image and loading applies it: splits then keep every view of one source
on one side.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from harness.data.records import Dataset

MANIFEST = "synth.json"


def read_manifest(out: Path) -> dict | None:
    try:
        manifest: dict = json.loads((Path(out) / MANIFEST).read_text())
        return manifest
    except (OSError, ValueError):
        return None


def apply_content_groups(dataset: Dataset) -> Dataset:
    """``dataset`` with each record of a synthetic set in its source's content group, named by
    the first (sorted) of the loader's group ids in it, so a source with one reference keeps
    its usual id; a dataset without a manifest, or whose manifest predates content groups, is
    returned as it is."""
    manifest = read_manifest(dataset.root) or {}
    details = manifest.get("details")
    sources = details.get("groups") if isinstance(details, dict) else None
    if not sources:
        return dataset
    names: dict[str, str] = {}
    for record in dataset.records:
        source = sources.get(record.image_id)
        if source is not None:
            names[source] = min(names.get(source, record.group), record.group)
    dataset.records = [
        dataclasses.replace(record, group=names[sources[record.image_id]])
        if record.image_id in sources else record for record in dataset.records]
    return dataset
