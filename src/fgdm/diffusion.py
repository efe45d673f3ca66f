"""Gaussian diffusion with a cosine schedule and a DDIM sampler (docs/model.md §6).

The diffusion process never builds or owns the network: :meth:`Diffusion.sample` takes the
denoiser (any callable returning an x_0 prediction) as an argument, so EMA weights or a guidance
wrapper can be swapped in. The network predicts x_0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import torch

from fgdm.config import DiffusionConfig

# x0_fn(x_t, t) -> x̂_0, with the conditioning already bound by the caller.
X0Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# one random generator for a batch, or one per sequence (see :func:`draw_noise`)
Generators = torch.Generator | Sequence[torch.Generator] | None


def draw_noise(
    shape: tuple[int, ...],
    generator: Generators,
    lengths: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise of ``shape`` (B, S, …): from one generator (or the global one) for the whole batch, or,
    given one generator per sequence and each sequence's length, each sequence's frames from its own generator at its
    own length, zero past it, so that a sequence's noise does not depend on the batch it is drawn in."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if lengths is None or len(generator) != shape[0] or len(lengths) != shape[0]:
        raise ValueError(f"noise for {shape[0]} sequences: one generator and one length per sequence")
    x = torch.zeros(shape, device=device, dtype=dtype)
    for b, (g, n) in enumerate(zip(generator, lengths, strict=True)):
        x[b, :n] = torch.randn((n, *shape[2:]), generator=g, device=device, dtype=dtype)
    return x


def cosine_alphas_cumprod(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """ᾱ_t for t = 0 … T−1 of the cosine schedule (Nichol & Dhariwal), β clipped at ``max_beta``."""

    def f(t: float) -> float:
        return math.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2

    betas = torch.tensor([min(1 - f(t + 1) / f(t), max_beta) for t in range(timesteps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


@dataclass
class SamplingStep:
    """One step of the sampler: the timestep, the current x_t and the model's x_0 prediction."""

    t: int
    x_t: torch.Tensor
    x0: torch.Tensor


class Diffusion:
    """The forward process q(x_t | x_0) and DDIM sampling over a few steps."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        self.cfg = cfg
        self.timesteps = cfg.timesteps
        self.alphas_cumprod = cosine_alphas_cumprod(cfg.timesteps, cfg.cosine_s)  # float64 (T,)
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """ᾱ (T,) and the sampler's timesteps (I,) on ``device``, copied there once. A copy from the host in every
        training step would make a GPU's host wait there for all the kernels queued before it. (Training makes
        them in eager code, :meth:`FGDM.draws`: a compiled loss that made them would compile again on its next
        call, its guards having seen them missing.)"""
        device = torch.device(device)
        if device not in self._tables:
            visited = torch.tensor(self.sampling_timesteps(), device=device)
            abar = self.alphas_cumprod.float() if device.type == "mps" else self.alphas_cumprod  # MPS has no float64
            self._tables[device] = (abar.to(device), visited)
        return self._tables[device]

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.tables(like.device)[0][t].to(like.dtype)
        return a.view(-1, *([1] * (like.dim() - 1)))

    def sample_timesteps(self, batch: int, device: torch.device, generator: torch.Generator | None = None):
        """Training timesteps, one per sequence: (B,) long. Uniform in {0, …, T−1}, or with
        ``train_timesteps: sampling`` uniform over the sampler's own :meth:`sampling_timesteps`."""
        if self.cfg.train_timesteps == "sampling":
            visited = self.tables(device)[1]
            return visited[torch.randint(0, len(visited), (batch,), device=device, generator=generator)]
        return torch.randint(0, self.timesteps, (batch,), device=device, generator=generator)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def sampling_timesteps(self, steps: int | None = None) -> list[int]:
        """I evenly spaced timesteps from T−1 down, T / I apart (rounded down): 999, 799, 599, 399, 199 for
        T = 1000, I = 5; the last is under T / I, so more steps end nearer t = 0 (with a whole stride T // I,
        601 steps ended at t = 399)."""
        steps = self.cfg.sampling_steps if steps is None else steps
        if not isinstance(steps, Integral) or isinstance(steps, bool):
            raise ValueError(f"steps: a whole number of sampling steps, got {steps!r}")
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"{steps} sampling steps: choose from 1 to at most {self.timesteps} (the diffusion's "
                             "timesteps)")  # fmt: skip
        return [self.timesteps - 1 - i * self.timesteps // steps for i in range(steps)]

    def sample_steps(
        self,
        x0_fn: X0Predictor,
        shape: tuple[int, ...],
        mask: torch.Tensor | None = None,
        steps: int | None = None,
        eta: float | None = None,
        generator: Generators = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        lengths: Sequence[int] | None = None,
    ) -> Iterator[SamplingStep]:
        """DDIM from pure noise, yielding every step; the last step's ``x0`` is the sample.

        Args:
            x0_fn: the denoiser with its conditioning bound, ``(x_t, t) -> x̂_0``.
            shape: (B, S, J, 3).
            mask: (B, S) bool, True on valid frames; padded frames are kept at zero.
            generator: seeds the initial noise and the η-noise (the same seed gives the same poses): one for the
                batch, or one per sequence with the sequences' ``lengths`` (:func:`draw_noise`).
        """
        eta = self.cfg.eta if eta is None else eta
        if not isinstance(eta, Real) or isinstance(eta, bool):  # ("0.5" compared as a string: a TypeError)
            raise ValueError(f"eta: a number in [0, 1], got {eta!r}")
        if not 0.0 <= eta <= 1.0:  # as diffusion.eta (NaN fails too): beyond 1 the noise would outgrow the step
            raise ValueError(f"eta: must be in [0, 1], got {eta}")
        keep = mask[..., None, None].to(dtype) if mask is not None else 1.0
        x = draw_noise(shape, generator, lengths, device, dtype) * keep
        ts = self.sampling_timesteps(steps)
        B = shape[0]
        for i, t in enumerate(ts):
            t_batch = torch.full((B,), t, device=device, dtype=torch.long)
            x0 = x0_fn(x, t_batch) * keep
            yield SamplingStep(t, x, x0)
            if i + 1 == len(ts):
                break
            a_t = float(self.alphas_cumprod[t])
            a_next = float(self.alphas_cumprod[ts[i + 1]])
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
            sigma = eta * math.sqrt((1 - a_next) / (1 - a_t)) * math.sqrt(1 - a_t / a_next)
            noise = draw_noise(shape, generator, lengths, device, dtype) if sigma > 0 else 0.0
            x = (math.sqrt(a_next) * x0 + math.sqrt(max(1 - a_next - sigma**2, 0.0)) * eps + sigma * noise) * keep

    def sample(self, x0_fn: X0Predictor, shape: tuple[int, ...], **kwargs) -> torch.Tensor:
        """The final x_0 prediction of :meth:`sample_steps`: (B, S, J, 3)."""
        *_, last = self.sample_steps(x0_fn, shape, **kwargs)
        return last.x0
