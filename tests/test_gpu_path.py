"""The CUDA path's fixes, checked on the CPU: SCG's LSTM in float32 under autocast, pinned batches copied
asynchronously, and beam search without a host sync per step (the same results as the masked assignment)."""

import torch
from torch.utils.data._utils.pin_memory import pin_memory

from fgdm.config import BackTranslatorConfig, load_config
from fgdm.data.dataset import Batch
from fgdm.data.vocab import Vocabulary
from fgdm.model.backtranslator import BackTranslator
from fgdm.model.scg import SCGBranch
from helpers import V, tiny


def _scg_with_hook() -> tuple[SCGBranch, list]:
    cfg = tiny()
    scg = SCGBranch(32, V, cfg.model.scg, cfg.diffusion.timesteps).eval()
    seen = []  # (packed input's dtype, packed output's dtype, output data) per LSTM call
    scg.lstm.register_forward_hook(
        lambda m, args, out: seen.append((args[0].data.dtype, out[0].data.dtype, out[0].data))
    )
    return scg, seen


def test_scg_lstm_runs_in_float32_under_bf16_autocast_and_matches_the_call_without_it():
    torch.manual_seed(0)
    scg, seen = _scg_with_hook()
    h = torch.randn(3, 5, 16)
    counts = torch.tensor([[20], [12], [1]])  # frames: 5, 3 and 1 steps after the two poolings
    with torch.no_grad():
        plain = scg._decode(h, counts)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            scg._decode(h, counts)
            scg._decode(h.bfloat16(), counts)  # an input autocast made bfloat16 is fed as float32
            scg(torch.randn(3, 20, 32), torch.ones(3, 20, dtype=torch.bool))  # the whole branch
    assert plain.dtype == torch.float32
    assert [(i, o) for i, o, _ in seen] == [(torch.float32, torch.float32)] * 4
    torch.testing.assert_close(seen[1][2], seen[0][2], rtol=0, atol=0)  # the LSTM itself is unaffected by autocast
    torch.testing.assert_close(seen[2][2], seen[0][2], rtol=1e-2, atol=1e-2)  # only the input's rounding differs


def test_scg_lstm_keeps_bfloat16_weights_dtype_under_bf16_true():
    scg, seen = _scg_with_hook()
    scg.to(torch.bfloat16)  # training.precision bf16-true: the weights are bfloat16, no autocast
    with torch.no_grad():
        scg._decode(torch.randn(2, 4, 16), torch.tensor([[16], [7]]))
    assert [(i, o) for i, o, _ in seen] == [(torch.bfloat16, torch.bfloat16)]


def _batch(make) -> Batch:
    counts = torch.tensor([[3, 2]])
    return Batch(make("gloss"), make("gloss_mask"), make("pose"), make("frame_mask"), ["a b"], ["n"], make("index"),
                 counts)  # fmt: skip


FIELDS = ["gloss", "gloss_mask", "pose", "frame_mask", "index"]


class FakeTensor:
    """Stands for a tensor where pinning needs CUDA: records how it is moved."""

    def __init__(self, name: str, pinned: bool, calls: list) -> None:
        self.name, self.pinned, self.calls = name, pinned, calls

    def is_pinned(self) -> bool:
        return self.pinned

    def pin_memory(self) -> "FakeTensor":
        return FakeTensor(self.name, True, self.calls)

    def to(self, device, non_blocking: bool = False) -> "FakeTensor":
        self.calls.append((self.name, str(device), non_blocking))
        return self


def test_the_dataloaders_pinning_pins_every_tensor_of_a_batch(monkeypatch):
    pinned = []

    def fake_pin(t):  # pinning itself needs CUDA: a copy stands for the page-locked one
        pinned.append(t)
        return t.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    batch = Batch(torch.tensor([[4, 5]]), torch.ones(1, 2, dtype=torch.bool), torch.randn(1, 3, 50, 3),
                  torch.ones(1, 3, dtype=torch.bool), ["a b"], ["n"], torch.tensor([7]))  # fmt: skip
    out = pin_memory(batch)  # what torch's DataLoader runs on each batch with pin_memory=True
    assert isinstance(out, Batch) and out.texts == ["a b"] and out.names == ["n"]
    assert [id(t) for t in pinned] == [id(getattr(batch, f)) for f in FIELDS]  # the host's counts stay as they are
    assert out.counts is batch.counts and batch.counts.tolist() == [[3, 2]]  # counted from the masks
    for f in FIELDS:
        assert getattr(out, f) is not getattr(batch, f) and torch.equal(getattr(out, f), getattr(batch, f))


def test_to_copies_pinned_tensors_without_blocking_and_pageable_ones_blocking():
    calls = []
    pageable = _batch(lambda name: FakeTensor(name, name == "pose", calls))
    assert pageable.to("cuda").counts is pageable.counts  # the host's counts stay there
    assert calls == [(f, "cuda", f == "pose") for f in FIELDS]
    calls.clear()
    pin_memory(_batch(lambda name: FakeTensor(name, False, calls))).to(torch.device("cuda"))
    assert calls == [(f, "cuda", True) for f in FIELDS]
    real = Batch(torch.tensor([[4]]), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 2, 50, 3),
                 torch.ones(1, 2, dtype=torch.bool), ["a"], ["n"], torch.tensor([0]))  # fmt: skip
    moved = real.to("cpu")
    assert all(torch.equal(getattr(moved, f), getattr(real, f)) for f in FIELDS)


def _masked_assignment_beam_search(model: BackTranslator, memory, mask, beam: int) -> tuple[list[list[int]], bool]:
    """translate() as it was, with the masked assignment; also whether some step had finished and unfinished beams."""
    B, device = memory.shape[0], memory.device
    bos, eos, pad = Vocabulary.bos_index, Vocabulary.eos_index, Vocabulary.pad_index
    mem, mem_mask = memory.repeat_interleave(beam, 0), mask.repeat_interleave(beam, 0)
    tokens = torch.full((B * beam, 1), bos, dtype=torch.long)
    scores = torch.full((B, beam), float("-inf"))
    scores[:, 0] = 0.0
    done = torch.zeros(B * beam, dtype=torch.bool)
    lengths = torch.zeros(B * beam)
    mixed = False
    for _ in range(model.cfg.max_output_length):
        mixed |= bool(done.any() and not done.all())
        logp = torch.log_softmax(model.word_logits(mem, mem_mask, tokens)[:, -1].float(), dim=-1)
        W = logp.shape[-1]
        logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
        logp[done, pad] = 0.0
        scores, flat = (scores.view(-1, 1) + logp).view(B, beam * W).topk(beam, dim=1)
        src = ((flat // W) + torch.arange(B, device=device)[:, None] * beam).view(-1)
        word = (flat % W).view(-1, 1)
        tokens = torch.cat([tokens[src], word], dim=1)
        lengths = lengths[src] + (~done[src]).float()
        done = done[src] | (word.view(-1) == eos)
        if done.all():
            break
    norm = scores.view(-1) / lengths.clamp_min(1.0) ** model.cfg.length_penalty
    best = norm.view(B, beam).argmax(1) + torch.arange(B) * beam
    out = []
    for row in tokens[best, 1:].tolist():
        words = []
        for w in row:
            if w in (eos, pad):
                break
            words.append(w)
        out.append(words)
    return out, mixed


def test_beam_search_gives_what_the_masked_assignment_gave():
    cfg = load_config("configs/backtranslator.yaml", ["model.width=16", "model.ff=32", "model.max_output_length=8"],
                      schema=BackTranslatorConfig)  # fmt: skip
    torch.manual_seed(1)
    model = BackTranslator(10, 12, cfg.model).eval()
    with torch.no_grad():
        model.word_head.bias[Vocabulary.eos_index] += 2.0  # some beams finish while others go on
        memory, mmask = model.encode(torch.randn(3, 9, 50, 3), torch.ones(3, 9, dtype=torch.bool))
        for beam in (1, 3, 4):
            expected, mixed = _masked_assignment_beam_search(model, memory, mmask, beam)
            assert model.translate(memory, mmask, beam=beam) == expected
            assert mixed or beam == 1
