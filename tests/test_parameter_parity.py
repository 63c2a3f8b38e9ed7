"""Trainable parameter counts of the authors' model with Swin-B (docs/design.md section 2)."""

import pytest

import lifeiqa


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("lifeiqa_swin_b", {}, 99_678_146),
        ("lifeiqa_swin_b", {"num_experts": 4}, 94_950_334),
        ("lifeiqa_swin_b", {"num_experts": 2}, 92_586_428),
        ("lifeiqa_swin_b", {"num_experts": 2, "depth": 2}, 91_142_780),
        ("lifeiqa_swin_b", {"num_experts": 1}, 91_404_090),
        ("lifeiqa_swin_b_livec", {}, 91_142_780),
        ("lifeiqa_swin_b_koniq10k", {}, 92_586_428),
        ("lifeiqa_swin_b_csiq", {}, 99_678_146),
    ],
)
def test_trainable_parameters_match_the_authors_model(name, overrides, expected):
    model = lifeiqa.create_model(name, pretrained=False, **overrides)
    assert trainable(model) == expected


def test_backbone_alone_matches_the_authors_count():
    model = lifeiqa.create_model("lifeiqa_swin_b", pretrained=False)
    assert trainable(model.backbone) == 86_741_176
