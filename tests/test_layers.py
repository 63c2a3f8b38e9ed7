import itertools

import pytest
import torch
import torch.nn.functional as F

from lifeiqa.layers import GraphConv, PartitionAvgPool, QueryGCN, SparseMoE


def reference_partition_average(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Cell (i, j) averages rows [i*H//g, (i+1)*H//g) and columns likewise, row-major tokens."""
    _, _, height, width = x.shape
    cells = []
    for i, j in itertools.product(range(grid), range(grid)):
        r0, r1 = i * height // grid, (i + 1) * height // grid
        c0, c1 = j * width // grid, (j + 1) * width // grid
        cells.append(x[:, :, r0:r1, c0:c1].mean(dim=(-2, -1)))
    return torch.stack(cells, dim=1)


def test_partition_pool_is_2x2_average_pooling_on_14x14():
    x = torch.randn(2, 5, 14, 14)
    pooled = PartitionAvgPool(7)(x)
    expected = F.avg_pool2d(x, 2).flatten(2).transpose(1, 2)
    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize("size", [(13, 15), (7, 7), (16, 9), (24, 24)])
def test_partition_pool_matches_reference_on_other_sizes(size):
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(PartitionAvgPool(7)(x), reference_partition_average(x, 7))


def test_partition_pool_smaller_than_grid_has_no_empty_cells():
    x = torch.randn(1, 4, 3, 5)
    pooled = PartitionAvgPool(7)(x)
    assert pooled.shape == (1, 49, 4)
    assert torch.isfinite(pooled).all()
    # each cell takes real positions: every value comes from the map itself
    assert set(pooled[0, :, 0].tolist()) <= set(x[0, 0].flatten().tolist())


def test_fixed_adjacency_is_normalised_complete_graph_and_not_saved():
    gcn = QueryGCN(24, (12, 6), num_tokens=6, adjacency="fixed")
    expected = (torch.ones(6, 6) + torch.eye(6)) / 7
    torch.testing.assert_close(gcn.fixed_adjacency, expected)
    assert not any("adjacency" in k for k in gcn.state_dict())
    widths = [tuple(conv.weight.shape) for conv in gcn.convs]
    assert widths == [(24, 12), (12, 6), (6, 24)]  # W stored (in, out)
    assert all(torch.count_nonzero(conv.bias) == 0 for conv in gcn.convs)


def test_graph_conv_computes_a_x_w_plus_b():
    conv = GraphConv(4, 3)
    torch.nn.init.normal_(conv.bias)
    adjacency, x = torch.rand(6, 6), torch.randn(2, 6, 4)
    torch.testing.assert_close(conv(adjacency, x), adjacency @ (x @ conv.weight) + conv.bias)


def test_learnable_adjacency_starts_equal_to_fixed_and_trains():
    torch.manual_seed(1)
    fixed = QueryGCN(24, (12, 6), 6, "fixed")
    learnable = QueryGCN(24, (12, 6), 6, "learnable")
    learnable.load_state_dict(fixed.state_dict(), strict=False)
    x = torch.randn(3, 6, 24)
    torch.testing.assert_close(learnable(x), fixed(x))
    assert [k for k in learnable.state_dict() if "adjacency" in k] == [
        "adjacency.0", "adjacency.1", "adjacency.2"]
    learnable(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in learnable.adjacency)


def sparse_reference(moe: SparseMoE, x: torch.Tensor) -> torch.Tensor:
    """Token by token: softmax over the top-k logits, weighted sum of the chosen experts."""
    flat = x.reshape(-1, x.shape[-1])
    out = torch.zeros_like(flat)
    for t, token in enumerate(flat):
        logits = moe.router(token)
        values, index = logits.topk(moe.top_k)
        for w, e in zip(values.softmax(-1), index, strict=True):
            out[t] += w * moe.experts[int(e)](token)
    return out.view_as(x)


def test_moe_equals_sparse_top_k_mixture():
    moe = SparseMoE(16, 32, num_experts=5, top_k=2, dropout=0.1).eval()
    x = torch.randn(3, 6, 16)
    torch.testing.assert_close(moe(x).tokens, sparse_reference(moe, x), atol=1e-5, rtol=1e-5)
    weights, selected, _ = moe.route(x)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 6))
    assert (selected.sum(-1) == 2).all()
    assert ((weights > 0) == selected.bool()).all()


def test_moe_aux_and_z_losses_follow_their_definitions():
    moe = SparseMoE(16, 32, num_experts=4, top_k=2, dropout=0.0)
    x = torch.randn(2, 6, 16)
    out = moe(x)
    weights, selected, logits = moe.route(x)
    p = weights.reshape(-1, 4).mean(0)
    f = selected.reshape(-1, 4).mean(0)
    torch.testing.assert_close(out.aux_loss, 4 * (p * f).sum())
    torch.testing.assert_close(out.z_loss, (torch.logsumexp(logits, -1) ** 2).mean())


def test_balanced_routing_gives_aux_loss_k():
    moe = SparseMoE(4, 8, num_experts=4, top_k=2, dropout=0.0)
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(4))
        moe.router.bias.zero_()
    # half the tokens prefer experts {0, 1}, half {2, 3}, with equal weights
    x = torch.tensor([[[5.0, 5.0, 0.0, 0.0], [0.0, 0.0, 5.0, 5.0]]])
    torch.testing.assert_close(moe(x).aux_loss, torch.tensor(2.0))


def test_every_expert_gets_a_gradient_each_step():
    moe = SparseMoE(16, 32, num_experts=8, top_k=2, dropout=0.1).train()
    x = torch.randn(1, 2, 16)  # 2 tokens choose at most 4 of the 8 experts
    out = moe(x)
    (out.tokens.sum() + out.aux_loss + out.z_loss).backward()
    for name, param in moe.named_parameters():
        assert param.grad is not None, name


@pytest.mark.parametrize("queries, keys", [(6, 49), (6, 6)])
def test_batch_first_attention_equals_torch_multihead_attention(queries, keys):
    from torch import nn

    from lifeiqa.layers import MultiheadAttention

    torch.manual_seed(0)
    ours = MultiheadAttention(32, 4, batch_first=True)
    theirs = nn.MultiheadAttention(32, 4, batch_first=True)
    # the same parameters under the same names: the authors' checkpoints load into either
    assert list(dict(ours.named_parameters())) == list(dict(theirs.named_parameters()))
    theirs.load_state_dict(ours.state_dict())
    query = torch.randn(3, queries, 32, requires_grad=True)
    memory = torch.randn(3, keys, 32, requires_grad=True)
    out = ours(query, memory)
    expected = theirs(query, memory, memory, need_weights=False)[0]
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [query, memory, *ours.parameters()], grad)
    want = torch.autograd.grad(expected, [query, memory, *theirs.parameters()], grad)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_queries_from_the_projected_mean_equal_the_mean_of_projected_tokens():
    """forward_head projects the deepest stage's mean; projecting every token and averaging (as
    the authors' code does) is the same function, with the same gradients."""
    import lifeiqa

    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_effnet_lite0_small", pretrained=False).eval()
    features = lifeiqa.BackboneFeatures(torch.randn(2, 49, 112), torch.randn(2, 320, 6, 6))

    def per_token(features):
        tokens = model.query_proj(features.deepest).flatten(2).transpose(1, 2)
        decoded = model.decoder(model.query_embed + tokens.mean(1, keepdim=True),
                                model.memory_proj(features.pooled))
        return model.head(decoded)[0]

    score = model.forward_head(features).score
    torch.testing.assert_close(score, per_token(features))
    params = [model.query_proj.weight, model.query_proj.bias]
    for a, b in zip(torch.autograd.grad(score.sum(), params),
                    torch.autograd.grad(per_token(features).sum(), params), strict=True):
        torch.testing.assert_close(a, b)
