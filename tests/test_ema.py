"""The EMA of the weights that sampling uses (training.ema_decay)."""

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils._python_dispatch import TorchDispatchMode

from fgdm.config import load_config
from fgdm.model import build_model
from fgdm.training.ema import EMA


def _denoiser():
    torch.manual_seed(0)
    return build_model(load_config("configs/tiny.yaml"), 20).denoiser


@pytest.mark.parametrize("decay", [0.99, 0.997, 0.9995, 0.9999])
def test_integer_buffers_stay_exact(decay):
    """The skeleton's parent indices: torch's AveragedModel averages them as floats and truncates (0.997: 9 of 50
    off by one); the EMA leaves them alone."""
    model = _denoiser()
    ema = EMA(model, decay)
    for _ in range(5):
        ema.update_parameters(model)
    assert torch.equal(ema.module.iconicity.parents, model.iconicity.parents)


def test_the_average_follows_its_formula_and_agrees_with_torchs_on_floating_tensors():
    model, decay = _denoiser(), 0.9
    ema = EMA(model, decay)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    expected = None
    for step in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))  # a training step
        ema.update_parameters(model)
        reference.update_parameters(model)
        w = model.output.proj.weight.detach().clone()
        expected = w if expected is None else decay * expected + (1 - decay) * w  # the first update copies
        assert torch.allclose(ema.module.output.proj.weight, expected, atol=1e-6), step
    assert int(ema.n_averaged) == 4
    theirs = dict(reference.module.named_parameters())
    for name, p in ema.module.named_parameters():
        assert torch.allclose(p, theirs[name], atol=1e-6), name


class _HostReads(TorchDispatchMode):
    """Counts the operators that bring a tensor's value to the host (on a GPU: a wait for the device)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func.overloadpacket.__name__ in ("_local_scalar_dense", "item", "is_nonzero")
        return func(*args, **(kwargs or {}))


def test_an_update_reads_nothing_back_from_the_device():
    model = _denoiser()
    ema = EMA(model, 0.99)
    ema.update_parameters(model)  # the first reads n_averaged once
    with _HostReads() as reads:
        for _ in range(3):
            ema.update_parameters(model)
    assert reads.count == 0
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True)
    reference.update_parameters(model)
    with _HostReads() as reads:
        reference.update_parameters(model)
    assert reads.count > 0  # what the counter catches: torch's update reads n_averaged


def test_checkpoints_keep_torchs_keys_and_a_loaded_count_decides_copy_or_average():
    model = _denoiser()
    ema = EMA(model, 0.5)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    assert ema.state_dict().keys() == reference.state_dict().keys()
    ema.update_parameters(model)
    saved = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        model.output.proj.weight.add_(1.0)
    fresh = EMA(model, 0.5)
    fresh.update_parameters(model)  # started: it copied the new weights
    fresh.load_state_dict(saved)  # a resumed run: one average so far
    fresh.update_parameters(model)
    w = model.output.proj.weight.detach()
    assert torch.allclose(fresh.module.output.proj.weight, 0.5 * saved["module.output.proj.weight"] + 0.5 * w)
    fresh.load_state_dict({**saved, "n_averaged": torch.tensor(0)})  # nothing averaged yet: the next update copies
    fresh.update_parameters(model)
    assert torch.equal(fresh.module.output.proj.weight, w)


def test_the_kept_tensor_lists_follow_a_move_a_load_and_another_model():
    """The update keeps the lists of tensors it averages; moving the copy (which replaces its buffers), loading a
    state dict or passing another model finds them again, so no update lands on a tensor no longer in use."""
    import copy
    import pickle

    model = _denoiser()
    ema = EMA(model, 0.5)
    ema.update_parameters(model)
    lit = torch.nn.ModuleDict({"model": model, "ema": ema})  # as Lightning holds both: moved together
    lit.to(torch.float64)
    with torch.no_grad():
        model.output.proj.weight.fill_(1.0)
        model.focal.blocks[0].gcn.prior.fill_(2.0)  # a floating-point buffer
    before = ema.module.output.proj.weight.detach().clone()
    prior = ema.module.focal.blocks[0].gcn.prior.clone()
    ema.update_parameters(model)
    assert ema.module.output.proj.weight.dtype == torch.float64
    assert torch.allclose(ema.module.output.proj.weight, 0.5 * before + 0.5)
    assert torch.allclose(ema.module.focal.blocks[0].gcn.prior, 0.5 * prior + 1.0)

    other = copy.deepcopy(model)
    with torch.no_grad():
        other.output.proj.weight.fill_(3.0)
    before = ema.module.output.proj.weight.detach().clone()
    ema.update_parameters(other)
    assert torch.allclose(ema.module.output.proj.weight, 0.5 * before + 1.5)

    zeros = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in ema.state_dict().items()}
    ema.load_state_dict(zeros, assign=True)  # assign: the loaded tensors replace those held before
    ema.update_parameters(other)  # the loaded (zero) weights are those averaged
    assert torch.allclose(ema.module.output.proj.weight, torch.full_like(before, 1.5))

    revived = pickle.loads(pickle.dumps(ema))  # a spawned process gets the module pickled
    revived.update_parameters(revived.module)
    assert torch.allclose(revived.module.output.proj.weight, torch.full_like(before, 1.5))
