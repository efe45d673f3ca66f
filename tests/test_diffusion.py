"""The forward process (docs/model.md §6): the cosine schedule, its sampling timesteps, and q(x_t | x_0)."""

import math

import torch

from fgdm.config import load_config
from fgdm.diffusion import Diffusion, cosine_alphas_cumprod
from helpers import tiny


def test_cosine_schedule_invariants():
    abar = cosine_alphas_cumprod(1000)
    assert abar.shape == (1000,) and (abar[1:] < abar[:-1]).all()
    assert 0.999 < abar[0] < 1 and 0 <= abar[-1] < 1e-4
    betas = 1 - abar[1:] / abar[:-1]
    assert betas.max() <= 0.999 + 1e-12
    assert Diffusion(tiny().diffusion).sampling_timesteps() == [99, 79, 59, 39, 19]
    assert Diffusion(load_config("configs/paper.yaml").diffusion).sampling_timesteps() == [999, 799, 599, 399, 199]


def test_q_sample_statistics():
    diff = Diffusion(load_config("configs/paper.yaml").diffusion)
    x0 = torch.full((20000, 3), 0.3)
    g = torch.Generator().manual_seed(0)
    for t in (0, 300, 700, 999):
        xt = diff.q_sample(x0, torch.full((20000,), t), torch.randn(x0.shape, generator=g))
        a = float(diff.alphas_cumprod[t])
        assert abs(xt.mean() - math.sqrt(a) * 0.3) < 0.02
        assert abs(xt.std() - math.sqrt(1 - a)) < 0.02


def test_training_timesteps_are_uniform_or_the_samplers_own():
    g = torch.Generator().manual_seed(0)
    uniform = Diffusion(load_config("configs/paper.yaml").diffusion).sample_timesteps(20000, torch.device("cpu"), g)
    assert uniform.dtype == torch.long and uniform.min() == 0 and uniform.max() == 999
    assert len(uniform.unique()) > 990
    cfg = load_config("configs/paper.yaml", ["diffusion.train_timesteps=sampling"]).diffusion
    visited = Diffusion(cfg).sample_timesteps(20000, torch.device("cpu"), g)
    values, counts = visited.unique(return_counts=True)
    assert values.tolist() == [199, 399, 599, 799, 999]
    assert (counts - 4000).abs().max() < 300  # each of the five about equally often
