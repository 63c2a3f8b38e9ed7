"""Dataset validation before any training: every problem found, reported together.

Checked: metadata problems the loader collected (bad rows, escaping paths), duplicate entries,
non-finite or out-of-range scores, missing files, unreadable or truncated images, and the
expected size (a warning naming what is missing: partial copies are common). A run refuses to
start on problems unless the user explicitly excludes the affected records, and then the
exclusions are recorded with the results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from harness.data.records import Dataset, ImageRecord, Problem
from harness.data.specs import DatasetSpec
from harness.errors import DatasetError

# Real labels can sit slightly outside a nominal range (LIVE's realigned DMOS, for example).
SCORE_SLACK = 0.1
# A range the user states (their CSV's or Hugging Face dataset's) is taken as exact.
STATED_SCALE_LAYOUTS = ("csv", "hf")


class DatasetValidationError(DatasetError):
    """A dataset with problems that the user has not excluded: one line with the first (file
    and row) and the command that lists them all (``report`` holds every one)."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        count = len(report.problems)
        others = f"; {count - 1} more: `lifeiqa-bench datasets check {report.root} --dataset " \
                 f"{report.dataset}` lists them all" if count > 1 else ""
        super().__init__(
            f"dataset {report.dataset} has {count} problem(s): {report.problems[0]}{others}. Fix "
            f"them, or exclude the affected images explicitly (--exclude-bad), which is recorded "
            f"with the results")


@dataclass
class ValidationReport:
    dataset: str
    root: str
    images: int
    groups: int
    score_min: float | None
    score_max: float | None
    distortions: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_image_file(record: ImageRecord, decode: bool = True) -> str | None:
    """Why ``record``'s file cannot be used, or None. ``decode`` decodes every pixel (catches
    any truncation); otherwise Pillow's structural ``verify`` runs, which is much faster."""
    from PIL import Image

    if not record.path.is_file():
        return "image file not found"
    try:
        with Image.open(record.path) as image:
            image.load() if decode else image.verify()
            if image.width < 1 or image.height < 1:
                return "image has no pixels"
    except Exception as err:  # Pillow raises many types for damaged files
        return f"unreadable image ({type(err).__name__}: {err})"
    return None


def validate_dataset(dataset: Dataset, spec: DatasetSpec | None = None,
                     decode_images: bool = True) -> ValidationReport:
    problems = list(dataset.problems)
    slack = 0.0 if dataset.layout in STATED_SCALE_LAYOUTS else SCORE_SLACK
    seen: dict[str, str] = {}
    for record in dataset.records:
        where = record.source or record.image_id
        if record.image_id in seen:
            problems.append(Problem(where, f"duplicate entry for {record.image_id} "
                                           f"(first at {seen[record.image_id]})"))
            continue
        seen[record.image_id] = where
        if not dataset.scale.contains(record.score, slack):
            problems.append(Problem(where, f"score {record.score!r} outside "
                                           f"[{dataset.scale.low}, {dataset.scale.high}] "
                                           f"({dataset.scale.name})"))
        reason = check_image_file(record, decode_images)
        if reason:
            problems.append(Problem(f"{record.path} ({where})", reason))
    scores = [r.score for r in dataset.records]
    report = ValidationReport(
        dataset=dataset.name, root=str(dataset.root), images=len(dataset.records),
        groups=len(dataset.groups),
        score_min=min(scores) if scores else None, score_max=max(scores) if scores else None,
        distortions=dict(sorted(Counter(r.distortion for r in dataset.records
                                        if r.distortion).items())),
        problems=problems,
    )
    if spec is not None:
        if len(dataset.records) != spec.expected_images:
            report.warnings.append(
                f"expected {spec.expected_images} images for {spec.title}, found "
                f"{len(dataset.records)}; a partial copy?")
        if spec.expected_groups and len(dataset.groups) != spec.expected_groups:
            report.warnings.append(f"expected {spec.expected_groups} content groups, found "
                                   f"{len(dataset.groups)}")
        if spec.distortion_types:
            absent = [t for t in spec.distortion_types if t not in report.distortions]
            if absent:
                report.warnings.append(f"distortion types with no images: {absent}")
    return report


def exclude_problems(dataset: Dataset, report: ValidationReport) -> tuple[Dataset, list[Problem]]:
    """A copy of ``dataset`` without the records that ``report`` found problems with, and the
    list of exclusions to record with the results."""
    bad_locations = {p.location for p in report.problems}
    kept = [r for r in dataset.records
            if (r.source or r.image_id) not in bad_locations
            and f"{r.path} ({r.source or r.image_id})" not in bad_locations]
    return replace(dataset, records=kept, problems=[]), list(report.problems)


def require_valid(dataset: Dataset, spec: DatasetSpec | None = None,
                  exclude_bad: bool = False) -> tuple[Dataset, ValidationReport, list[Problem]]:
    """Validate; raise :class:`DatasetValidationError` on problems unless ``exclude_bad``."""
    report = validate_dataset(dataset, spec)
    if report.ok:
        return dataset, report, []
    if not exclude_bad:
        raise DatasetValidationError(report)
    cleaned, excluded = exclude_problems(dataset, report)
    return cleaned, report, excluded


def format_report(report: ValidationReport) -> str:
    """The report as text for ``lifeiqa-bench datasets check``."""
    lines = [
        f"dataset {report.dataset} at {report.root}",
        f"  images: {report.images}   content groups: {report.groups}",
        f"  scores: {report.score_min} .. {report.score_max}" if report.images else "  scores: -",
    ]
    if report.distortions:
        lines.append(f"  distortion types ({len(report.distortions)}):")
        lines += [f"    {name}: {count}" for name, count in report.distortions.items()]
    lines += [f"  warning: {w}" for w in report.warnings]
    if report.problems:
        lines.append(f"  problems ({len(report.problems)}):")
        lines += [f"    {p}" for p in report.problems]
    else:
        lines.append("  no problems found")
    return "\n".join(lines)
