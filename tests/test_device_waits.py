"""What makes a GPU's host wait, checked without a GPU: the model on PyTorch's ``meta`` device stands in for one.

On a GPU, a copy from the host made in passing (``torch.tensor(..., device=...)``, ``.to(device)`` of a host tensor)
or a read of a value back to the host waits for every kernel queued before it, so the host can no longer run
ahead of the device. On ``meta`` both are visible: a copy is an operator with tensors on two devices, and a
read needs a value that a meta tensor does not have.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fgdm.data.dataset import mask_counts
from fgdm.model import build_model
from helpers import V, batch, tiny


class _Crossings(TorchDispatchMode):
    """Records each operator that moves data between the host and the device, or reads a value back; a read gets
    a stand-in value (meta tensors hold none)."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        if name == "_local_scalar_dense" and tensors[0].device.type == "meta":
            self.seen.append("read")
            return 1 if not tensors[0].is_floating_point() else 1.0
        out = func(*args, **kwargs)
        outs = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor)]
        devices = {t.device.type for t in tensors + outs}
        if len(devices) > 1:
            self.seen.append(f"copy {name}")
        return out


def _on_meta(monkeypatch, **overrides):
    made = []  # tensors made on the device from host data (torch.tensor(list, device=...)): a copy too

    def recording(make):
        def inner(*args, **kwargs):
            out = make(*args, **kwargs)
            if out.device.type == "meta" and not (args and isinstance(args[0], torch.Tensor)):
                made.append(make.__name__)
            return out

        return inner

    monkeypatch.setattr(torch, "tensor", recording(torch.tensor))
    monkeypatch.setattr(torch, "as_tensor", recording(torch.as_tensor))
    torch.manual_seed(0)
    model = build_model(tiny(**overrides), V).to("meta")
    pose, frame_mask, gloss, gloss_mask = (t.to("meta") for t in batch())
    return model, (pose, frame_mask, gloss, gloss_mask), made


def test_a_training_step_neither_copies_to_the_device_nor_reads_back(monkeypatch):
    """After the first step, which copies the diffusion's tables once. The SCG branch is off: PyTorch has no meta
    kernel for its LSTM over packed sequences (the next test has stand-ins for it)."""
    model, inputs, made = _on_meta(monkeypatch, **{"model.scg.enabled": False})
    model.loss(*inputs).total.backward()  # the first: tables to the device
    made.clear()
    with _Crossings() as crossings:
        for _ in range(2):
            model.loss(*inputs).total.backward()
    assert crossings.seen == [] and made == []


def test_a_training_step_with_the_scg_branch_reads_nothing_back_given_the_batchs_counts(monkeypatch):
    """With the SCG branch on: its two eager parts (the LSTM over packed sequences, which has no meta kernel, and
    CTC) stand in for themselves and record where their lengths come from: the batch's counts, on the host, so
    nothing waits for the device."""
    import fgdm.model.scg as scg

    given = []

    def decode(self, h, counts):
        given.append(counts.device.type)
        return torch.log_softmax(h.sum(-1, keepdim=True) * self.classifier.bias, -1)  # (B, S', V + 1)

    def ctc(log_probs, targets, counts):
        given.append(counts.device.type)
        return log_probs.sum((0, 2))  # (B,)

    monkeypatch.setattr(scg.SCGBranch, "_decode", decode)
    monkeypatch.setattr(scg, "_ctc", ctc)
    model, inputs, made = _on_meta(monkeypatch)
    _, frame_mask, _, gloss_mask = batch()
    counts = mask_counts(frame_mask, gloss_mask)  # as a batch made on the host has them
    model.loss(*inputs, counts=counts).total.backward()  # the first: tables to the device
    made.clear()
    with _Crossings() as crossings:
        for _ in range(2):
            model.loss(*inputs, counts=counts).total.backward()
    assert crossings.seen == [] and made == [] and given == ["cpu"] * 6


def test_sampling_reads_back_only_the_longest_length(monkeypatch):
    """generate() reads the longest frame count once (it sets the shape) and makes the steps' timesteps once."""
    model, (_, frame_mask, gloss, gloss_mask), made = _on_meta(monkeypatch)
    frames = frame_mask.sum(1)
    with torch.no_grad():
        with _Crossings():  # the first: tables to the device
            model.generate(gloss, gloss_mask, frames)
        made.clear()
        with _Crossings() as crossings:
            model.generate(gloss, gloss_mask, frames)
    assert crossings.seen == ["read"] and made == ["tensor"]
