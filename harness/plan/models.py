"""What a job trains: a typed model reference instead of a name parsed on ``"+"``.

A model is a Life-IQA preset (``lifeiqa/registry.py``) with a variant: ``"full"``, one of the
paper's ablations (``lifeiqa.config.ABLATIONS``) or a registry model
(:mod:`harness.plan.registry`: the harness's own baselines and plug-ins), with the row's model
arguments, written as a call: ``my_net(width=64, act='relu')`` (Python literals; they are part
of the unit's config, so each set of arguments is a condition of its own). Registry models that
train on the preset's backbone (probes, feature heads, the DEIQT-style head) use its weights;
the others ignore the preset but record it, so every unit of one run names the same backbone.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from harness.errors import InvalidOptionError, UnknownNameError, unknown_name
from harness.plan.model_specs import BenchModelSpec
from harness.plan.registry import get_bench_model, list_bench_models
from lifeiqa.config import ABLATIONS

FULL = "full"
# Model kinds in leaderboard order: the reference first, then its ablations, then the registry's.
KINDS = ("lifeiqa", "ablation", "lifeiqa_config", "probe", "feature_head", "image_model",
         "zero_shot")
LIFEIQA_KINDS = KINDS[:2]  # a protocol's ``variants``; every other kind is a registry model


def variant_kind(variant: str) -> str:
    """The kind of model ``variant`` makes of a preset: ``"lifeiqa"`` (the full model),
    ``"ablation"``, or the registry model's family. An unknown name raises
    :class:`~harness.errors.UnknownNameError` naming the close ones."""
    if variant == FULL:
        return "lifeiqa"
    if variant in ABLATIONS:
        return "ablation"
    try:
        return get_bench_model(variant).family
    except UnknownNameError as err:
        if variant.startswith(("pyiqa:", "pyiqa-arch:")):
            raise
        raise unknown_name("model", variant, dict.fromkeys([FULL, *ABLATIONS, *list_bench_models()]),
                           "(or pyiqa:<metric>, pyiqa-arch:<Class>, or a plug-in's model)") from err


def canonical_args(arguments: dict[str, Any]) -> str:
    """Model arguments as the config stores them: JSON with sorted keys ("" for none)."""
    if not arguments:
        return ""
    try:
        return json.dumps(arguments, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidOptionError(f"model arguments {arguments!r}: expected JSON values "
                                 f"(numbers, strings, booleans, None, lists, mappings): {err}") from err


def parse_row(text: str) -> tuple[str, str]:
    """A protocol row as written, ``name`` or ``name(key=value, ...)``, as (name, canonical
    arguments); a malformed one raises InvalidOptionError naming it."""
    text = text.strip()
    if "(" not in text and ")" not in text:
        return text, ""
    start = text.find("(")
    name = text[:start].strip()
    if start <= 0 or not text.endswith(")") or not name:
        raise InvalidOptionError(f"model row {text!r}: expected NAME or NAME(key=value, ...)")
    try:
        call = ast.parse(f"f({text[start + 1:-1]})", mode="eval").body
    except SyntaxError as err:
        raise InvalidOptionError(f"model row {text!r}: expected NAME(key=value, ...) with Python "
                                 f"literal values ({err.msg})") from None
    if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
        raise InvalidOptionError(f"model row {text!r}: model arguments are keywords only "
                                 f"(NAME(key=value, ...))")
    arguments: dict[str, Any] = {}
    for keyword in call.keywords:
        assert keyword.arg is not None  # keywords only: checked above
        try:
            arguments[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise InvalidOptionError(f"model row {text!r}: argument {keyword.arg}="
                                     f"{ast.unparse(keyword.value)} is not a Python literal "
                                     f"(number, string, boolean, None, list, dict)") from None
    return name, canonical_args(arguments)


def split_rows(text: str) -> list[str]:
    """Comma-separated rows, commas inside a row's arguments kept: ``"a,b(x=1,y=2)"`` ->
    ``["a", "b(x=1,y=2)"]``."""
    rows, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            rows.append(current.strip())
            current = ""
            continue
        current += char
    rows.append(current.strip())
    return [row for row in rows if row]


def format_args(args: str) -> str:
    """``(key=value,...)`` in Python literal form, or "" without arguments."""
    if not args:
        return ""
    return "(" + ",".join(f"{k}={v!r}" for k, v in sorted(json.loads(args).items())) + ")"


@dataclass(frozen=True)
class ModelRef:
    """A preset, a variant and the variant's model arguments (canonical JSON, "" without).
    ``kind`` is resolved from the registry when not given; a stored result gives the kind it
    recorded, so its units load where the plug-in that made them is not installed."""

    preset: str
    variant: str = FULL
    args: str = ""
    kind: str = ""

    def __post_init__(self) -> None:
        if self.kind:
            return
        object.__setattr__(self, "kind", variant_kind(self.variant))  # raises for unknown
        if self.args:
            if not self.from_registry:
                raise InvalidOptionError(f"model {self.variant!r} of preset {self.preset}: "
                                         f"Life-IQA variants take no model arguments")
            self.spec.check_args(self.arguments)

    @classmethod
    def parse(cls, preset: str, row: str) -> ModelRef:
        """The model a protocol row names (``name`` or ``name(key=value, ...)``)."""
        return cls(preset, *parse_row(row))

    @property
    def arguments(self) -> dict[str, Any]:
        return json.loads(self.args) if self.args else {}

    @property
    def from_registry(self) -> bool:
        """A registry model (a baseline or a plug-in), not Life-IQA or its ablation."""
        return self.kind not in LIFEIQA_KINDS

    @property
    def spec(self) -> BenchModelSpec:
        """The registry's entry of a registry model."""
        return get_bench_model(self.variant)

    @property
    def name(self) -> str:
        """The display and folder name: the preset, ``preset+ablation``, or the registry
        model's name with its arguments."""
        if self.variant == FULL:
            return self.preset
        if not self.from_registry:
            return f"{self.preset}+{self.variant}"
        return self.variant + format_args(self.args)

    def __str__(self) -> str:
        return self.name
