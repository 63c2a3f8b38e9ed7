"""An independent reading of the authors' Life-IQA, for checking the converter and the model.

``official_state_dict`` lays out random tensors under the authors' key names (docs/design.md section
2) for a miniature Swin configuration; ``official_forward`` computes the authors' forward pass
from those tensors directly with functional ops, sharing no code with ``lifeiqa``'s modules.
"""

import itertools
import math

import timm
import torch
import torch.nn.functional as F

SWIN = "swin_tiny_patch4_window7_224"
SWIN_KWARGS = {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2)}
DIM, QUERIES, HEADS, DEPTH, EXPERTS, TOP_K, HIDDEN = 24, 6, 6, 2, 4, 2, 48
GCN_WIDTHS = (24, 12, 6, 24)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def make_swin() -> torch.nn.Module:
    return timm.create_model(SWIN, pretrained=False, **SWIN_KWARGS).eval()


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2, offset=0.0):
        return torch.randn(*shape, generator=gen) * scale + offset

    torch.manual_seed(seed)
    swin = make_swin().state_dict()
    sd: dict[str, torch.Tensor] = {}
    for key, value in swin.items():
        if key.startswith(("head.", "norm.")):
            continue  # the authors delete the final norm and head
        sd["pretrain_model." + key] = value
        if key.startswith("patch_embed."):
            sd["backbone_stages.0.0." + key[len("patch_embed."):]] = value
        else:
            stage = int(key.split(".")[1])
            rest = key.split(".", 2)[2]
            sd[("backbone_stages.0.1." if stage == 0 else f"backbone_stages.{stage}.") + rest] = value
    c3, c4 = 4 * SWIN_KWARGS["embed_dim"], 8 * SWIN_KWARGS["embed_dim"]
    sd["proj_layer3.weight"], sd["proj_layer3.bias"] = rand(DIM, c3), rand(DIM)
    sd["proj_layer4.weight"], sd["proj_layer4.bias"] = rand(DIM, c4, 1, 1), rand(DIM)
    sd["bunch_embedding"] = rand(1, QUERIES, DIM)
    for n in range(DEPTH):
        p = f"bunch_decoder.layers.{n}."
        sd[p + "multihead_attn.in_proj_weight"] = rand(3 * DIM, DIM)
        sd[p + "multihead_attn.in_proj_bias"] = rand(3 * DIM)
        sd[p + "multihead_attn.out_proj.weight"] = rand(DIM, DIM)
        sd[p + "multihead_attn.out_proj.bias"] = rand(DIM)
        for i, (a, b) in enumerate(itertools.pairwise(GCN_WIDTHS), start=1):
            sd[p + f"GCN.gcn{i}.weight"] = rand(a, b)  # stored (in, out)
            sd[p + f"GCN.gcn{i}.bias"] = rand(b)
        sd[p + "norm2.weight"], sd[p + "norm2.bias"] = rand(DIM, offset=1.0), rand(DIM)
    sd["MOE.router.linear.weight"], sd["MOE.router.linear.bias"] = rand(EXPERTS, DIM), rand(EXPERTS)
    for e in range(EXPERTS):
        sd[f"MOE.experts.{e}.net.0.weight"] = rand(HIDDEN, DIM)
        sd[f"MOE.experts.{e}.net.0.bias"] = rand(HIDDEN)
        sd[f"MOE.experts.{e}.net.3.weight"] = rand(DIM, HIDDEN)
        sd[f"MOE.experts.{e}.net.3.bias"] = rand(DIM)
    sd["norm3.weight"], sd["norm3.bias"] = rand(DIM, offset=1.0), rand(DIM)
    sd["gamma"] = torch.tensor(0.37)
    sd["fc.weight"], sd["fc.bias"] = rand(1, DIM), rand(1)
    return sd


def official_forward(sd: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """The authors' forward pass (eval mode) on RGB images in [0, 1]."""
    swin = make_swin()
    swin.load_state_dict({k[len("pretrain_model."):]: v for k, v in sd.items()
                          if k.startswith("pretrain_model.")}, strict=False)
    x = swin.patch_embed((images - MEAN) / STD)
    stages = []
    for layer in swin.layers:
        x = layer(x)
        stages.append(x.permute(0, 3, 1, 2))
    stage3, stage4 = stages[2], stages[3]

    deep = F.conv2d(stage4, sd["proj_layer4.weight"], sd["proj_layer4.bias"])
    queries = sd["bunch_embedding"] + deep.flatten(2).transpose(1, 2).mean(1, keepdim=True)
    pooled = F.avg_pool2d(stage3, 2).flatten(2).transpose(1, 2)  # 14x14 -> 7x7 partitions
    memory = F.linear(pooled, sd["proj_layer3.weight"], sd["proj_layer3.bias"])
    adjacency = (torch.ones(QUERIES, QUERIES) + torch.eye(QUERIES)) / (QUERIES + 1)

    for n in range(DEPTH):
        p = f"bunch_decoder.layers.{n}."
        h = queries
        for i in (1, 2, 3):
            h = adjacency @ (h @ sd[p + f"GCN.gcn{i}.weight"]) + sd[p + f"GCN.gcn{i}.bias"]
            h = F.relu(h) if i < 3 else h
        queries = queries + h
        normed = F.layer_norm(queries, (DIM,), sd[p + "norm2.weight"], sd[p + "norm2.bias"])
        wq, wk, wv = sd[p + "multihead_attn.in_proj_weight"].chunk(3)
        bq, bk, bv = sd[p + "multihead_attn.in_proj_bias"].chunk(3)

        def heads(t):
            return t.view(t.shape[0], t.shape[1], HEADS, DIM // HEADS).transpose(1, 2)

        q, k, v = heads(normed @ wq.T + bq), heads(memory @ wk.T + bk), heads(memory @ wv.T + bv)
        attn = (q @ k.transpose(-1, -2) / math.sqrt(DIM // HEADS)).softmax(-1)
        context = (attn @ v).transpose(1, 2).reshape(queries.shape)
        queries = queries + F.linear(context, sd[p + "multihead_attn.out_proj.weight"],
                                     sd[p + "multihead_attn.out_proj.bias"])

    h = F.layer_norm(queries, (DIM,), sd["norm3.weight"], sd["norm3.bias"])
    logits = F.linear(h, sd["MOE.router.linear.weight"], sd["MOE.router.linear.bias"])
    values, index = logits.topk(TOP_K, dim=-1)
    weights = values.softmax(-1)
    mixed = torch.zeros_like(h)
    for e in range(EXPERTS):
        hidden = F.relu(F.linear(h, sd[f"MOE.experts.{e}.net.0.weight"], sd[f"MOE.experts.{e}.net.0.bias"]))
        out = F.linear(hidden, sd[f"MOE.experts.{e}.net.3.weight"], sd[f"MOE.experts.{e}.net.3.bias"])
        weight_e = (weights * (index == e)).sum(-1, keepdim=True)
        mixed = mixed + weight_e * out
    y = h + sd["gamma"] * mixed
    return F.linear(y, sd["fc.weight"], sd["fc.bias"]).squeeze(-1).mean(-1)
