"""Parameter counts (fgdm.model.summary): each ablation switch removes exactly its part; the paper's sizes."""

from fgdm.config import load_config
from fgdm.model import build_model
from fgdm.model.summary import parameter_counts
from helpers import V, tiny


def counts(**overrides):
    return parameter_counts(build_model(tiny(**overrides), V))


def test_each_ablation_switch_removes_exactly_its_part():
    cfg = tiny()
    L1, Df, Dg, J, K = cfg.model.focal.layers, cfg.model.focal.width, cfg.model.width, 50, 3
    n = cfg.model.focal.neighbors
    full = counts()
    assert counts(**{"model.focal.contextual": False})["focal"] == full["focal"] - L1 * (
        2 * Df * Df + K * (2 * n + 1) + K
    )
    assert counts(**{"model.focal.semantic_mask": False})["focal"] == full["focal"] - L1 * (
        Dg * J * J + J * J + Df * Dg + Dg + 2 * K
    )
    assert counts(**{"model.focal.topology": False})["focal"] == full["focal"] - L1 * K * J * J
    no_focal = counts(**{"model.focal.enabled": False})
    assert no_focal["focal"] == 0 and no_focal["general"] == full["general"] - (J * Df - J * 7) * Dg
    assert counts(**{"model.scg.enabled": False})["scg"] == 0 and full["scg"] > 0
    per_block = full["focal"] - counts(**{"model.focal.layers": 1})["focal"]
    assert counts(**{"model.focal.layers": 3})["focal"] == full["focal"] + per_block
    assert counts(**{"model.general.layers": 2})["general"] > full["general"]
    assert counts(**{"model.focal.neighbors": 3})["focal"] == full["focal"] + L1 * K * 2
    assert counts(**{"model.focal.width": 16})["focal"] > full["focal"]


def test_paper_configuration_sizes():
    model = build_model(load_config("configs/paper.yaml"), 1089)
    sizes = parameter_counts(model)
    assert 20.0e6 < sizes["generator"] < 22.0e6  # released code: about 21.0 M
    assert 21.5e6 < sizes["scg"] < 21.9e6  # released code: about 21.7 M


def test_macs_count_the_focal_stage_whichever_path_computes_it():
    """The C kernel is invisible to torch's FLOP counter: the count goes through the PyTorch path, so it is the
    same on every machine and dropping A_a (the contextual term) shows its own cost, not a fifth of it."""
    from fgdm.model.summary import denoiser_macs

    def macs(kernel: str, **overrides) -> int:
        model = build_model(tiny(**{"model.focal.kernel": kernel, **overrides}), V)
        macs = denoiser_macs(model, frames=16)
        assert all(m.kernel == kernel for m in model.modules() if hasattr(m, "kernel"))  # put back
        return macs

    assert macs("auto") == macs("torch")
    focal_only = macs("auto") - macs("auto", **{"model.focal.enabled": False})
    assert macs("auto") - macs("auto", **{"model.focal.contextual": False}) > 0.2 * focal_only
