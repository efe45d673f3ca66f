"""The Focal stage's ASGCN (docs/model.md §4.3): contextual correlation A_a, semantic mask M, chunking."""

import math

import torch

from fgdm.model.asgcn import ASGCN
from fgdm.skeleton import PT50
from helpers import activate, asgcn_inputs, tiny


def make_asgcn(**overrides) -> ASGCN:
    """An ASGCN layer of width 8 under a 32-wide gloss encoding, on PT50's partitioned adjacency."""
    return ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 32, tiny(**overrides).model.focal)


def test_contextual_correlation_is_exactly_zero_at_initialisation():
    gcn = make_asgcn()
    h, cond, fm, gm = asgcn_inputs()
    assert (gcn.contextual_adjacency(h, fm) == 0).all()
    A = gcn.adjacency(h, cond, fm, gm)
    torch.testing.assert_close(A, torch.as_tensor(PT50.partition_adjacency()).expand_as(A), rtol=0, atol=0)


def test_semantic_mask_starts_at_one_and_stays_in_0_2():
    gcn = make_asgcn()
    h, cond, _, gm = asgcn_inputs()
    assert (gcn.semantic_mask(h, cond, gm) == 1).all()
    with torch.no_grad():
        gcn.separation_weight.fill_(50.0)
        gcn.separation_bias.fill_(-3.0)
    M = gcn.semantic_mask(h * 10, cond * 10, gm)
    assert M.min() >= 0 and M.max() <= 2 and M.std() > 0.1


def test_contextual_window_matches_a_direct_loop():
    """A_a from the batched implementation equals Eq. 4–5 written frame by frame."""
    cfg = tiny().model.focal
    gcn = activate(make_asgcn())
    h, _, fm, _ = asgcn_inputs(B=1, S=6)
    fm[0, 5] = False
    A = gcn.contextual_adjacency(h, fm)
    q, k = gcn.query(h)[0], gcn.key(h)[0]
    for i in range(5):
        maps = torch.zeros(2 * cfg.neighbors + 1, 50, 50)
        for m, off in enumerate(range(-cfg.neighbors, cfg.neighbors + 1)):
            j = i + off
            if 0 <= j < 6 and fm[0, j]:
                maps[m] = torch.sigmoid(q[i] @ k[j].T / math.sqrt(8))
        expected = torch.einsum("muv,km->kuv", maps, gcn.aggregate.weight) + gcn.aggregate.bias[:, None, None]
        torch.testing.assert_close(A[0, i], expected, rtol=1e-5, atol=1e-5)


def test_chunked_asgcn_gives_the_same_outputs_and_gradients():
    """chunk_frames changes the evaluation order only (checked in float64, free of rounding-order noise)."""
    torch.manual_seed(0)
    outs, grads = [], []
    for chunk in (0, 6):  # B = 2: chunks of 3 frames, the last one partial (10 = 3 + 3 + 3 + 1)
        torch.manual_seed(0)
        gcn = activate(make_asgcn(**{"model.focal.chunk_frames": chunk})).double()
        h, cond, fm, gm = asgcn_inputs(B=2, S=10)
        h, cond = h.double(), cond.double()
        fm[1, 7:] = False
        h.requires_grad_(True)
        out = gcn(h, cond, fm, gm)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append([h.grad, *(p.grad for p in gcn.parameters())])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_off_the_cpu_all_frames_go_at_once():
    """Chunks block for CPU caches; on another device (a GPU) they would only multiply kernel launches."""
    gcn = make_asgcn(**{"model.focal.chunk_frames": 64, "model.focal.kernel": "auto"})
    cpu = torch.zeros(64, 130, 50, 8)
    assert gcn.execution_path(cpu) in ("kernel", "chunks")
    gcn.kernel = "torch"
    assert gcn.execution_path(cpu) == "chunks" and gcn._chunk_frames(cpu) == 1  # 64 // B frames at batch 64
    elsewhere = torch.empty(64, 130, 50, 8, device="meta")  # stands in for a GPU: no device needed
    assert gcn.execution_path(elsewhere) == "frames" and gcn._chunk_frames(elsewhere) == 130


def test_the_regrouped_gloss_weights_equal_frame_descriptors_scored_against_the_glosses():
    """The semantic mask's weights w = softmax_l((W_d h̄_i + b_d) · G_l / √D_g) over valid glosses, and P_l = MG(G_l),
    whether G is given or its GlossSide, computed beforehand with other conditions (float64)."""
    gcn = activate(make_asgcn()).double()
    h, cond, _, gm = asgcn_inputs(B=2, L=3)
    h, cond = h.double(), cond.double()
    gm[1, 2] = False
    scores = torch.einsum("bsd,bld->bsl", gcn.descriptor(h.mean(2)), cond) / math.sqrt(32)
    expected = torch.softmax(scores.masked_fill(~gm[:, None], float("-inf")), dim=-1)
    side = gcn.gloss_side(torch.stack([cond, -cond]))[0]
    for given in (cond, side):
        w, prototypes = gcn._semantic_inputs(h, given, gm)
        torch.testing.assert_close(w, expected)
        torch.testing.assert_close(prototypes, gcn.mask_generator(cond).view(2, 3, 50, 50))
    assert (w[1, :, 2] == 0).all()
