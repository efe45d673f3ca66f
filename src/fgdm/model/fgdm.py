"""FGDM: the denoiser, its training-only SCG branch, the diffusion process and the losses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fgdm.config import Config, DiffusionConfig, LossConfig
from fgdm.data.vocab import Vocabulary
from fgdm.diffusion import Diffusion, Generators
from fgdm.losses import BoneLoss, joint_loss, length_loss
from fgdm.model.denoiser import Denoiser
from fgdm.model.scg import SCGBranch
from fgdm.representation import PoseNormalizer
from fgdm.skeleton import PT50, Skeleton


@dataclass
class LossTerms:
    """The total loss and its parts (scalars); ``scg`` and ``length`` are 0 when disabled."""

    total: torch.Tensor
    joint: torch.Tensor
    bone: torch.Tensor
    scg: torch.Tensor
    length: torch.Tensor

    def detached(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self.__dict__.items()}


def with_unknowns(
    gloss: torch.Tensor, gloss_mask: torch.Tensor, rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``gloss`` with each valid position replaced by ``<unk>`` with probability ``rate`` (padding kept).

    The vocabulary is every training gloss, so without this ``<unk>`` never occurs in training and its
    embedding stays at its random initialisation, while every gloss unseen in training maps to it at test
    time (on dgs-pt half the dev split's glosses).
    """
    if rate <= 0:
        return gloss
    drop = torch.rand(gloss.shape, generator=generator, device=gloss.device) < rate
    return gloss.masked_fill(drop & gloss_mask, Vocabulary.unk_index)


class FGDM(nn.Module):
    """L = L_joint + λ·L_bone + γ·L_SCG (+ a small length-head term), weights from ``loss``.

    Args:
        denoiser: the x_0 predictor.
        scg: the SCG branch, or None (``model.scg.enabled: false``, or an inference-only build).
        diffusion: the forward process and sampler, and the pose representation it works in.
        loss: the loss terms' weights and variants.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        scg: SCGBranch | None,
        diffusion: DiffusionConfig,
        loss: LossConfig,
        skeleton: Skeleton = PT50,
    ) -> None:
        super().__init__()
        self.loss_cfg, self.skeleton = loss, skeleton
        self.denoiser = denoiser
        self.scg = scg
        self.diffusion = Diffusion(diffusion)
        self.normalizer = PoseNormalizer(diffusion, skeleton)
        self.bone_loss = BoneLoss(skeleton, loss.bone_mode)
        weight = torch.ones(skeleton.num_joints)
        weight[list(skeleton.hands)] = loss.hand_weight
        self.register_buffer("joint_weight", weight, persistent=False)

    def loss(
        self,
        pose: torch.Tensor,
        frame_mask: torch.Tensor,
        gloss: torch.Tensor,
        gloss_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        t: torch.Tensor | None = None,
        unk_rate: float = 0.0,
        counts: torch.Tensor | None = None,
    ) -> LossTerms:
        """Training loss of one batch: pose (B, S, J, 3), masks True on valid positions.

        ``unk_rate``: the denoiser sees each gloss as ``<unk>`` with this probability (gloss dropout,
        ``training.unk_rate``); the SCG branch's CTC targets stay the true glosses. ``counts``: the batch's frame
        and gloss counts (B, 2) on the host (:attr:`Batch.counts <fgdm.data.dataset.Batch.counts>`), which the SCG
        branch reads there; without them it copies them from the masks (on a GPU, a wait).
        """
        draws = self.draws(pose, gloss, gloss_mask, generator, t, unk_rate)
        return self.loss_of_draws(pose, frame_mask, gloss, gloss_mask, *draws, counts)

    def draws(
        self,
        pose: torch.Tensor,
        gloss: torch.Tensor,
        gloss_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        t: torch.Tensor | None = None,
        unk_rate: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The random part of :meth:`loss`: the timesteps t (B,) (unless given), the noise (B, S, J, 3) and the
        glosses the denoiser sees, in this order from ``generator`` (or the global one)."""
        self.diffusion.tables(pose.device)  # made here, eager, for the loss to read
        if t is None:
            t = self.diffusion.sample_timesteps(pose.shape[0], pose.device, generator)
        noise = torch.randn(pose.shape, generator=generator, device=pose.device, dtype=pose.dtype)
        return t, noise, with_unknowns(gloss, gloss_mask, unk_rate, generator)

    def loss_of_draws(
        self,
        pose: torch.Tensor,
        frame_mask: torch.Tensor,
        gloss: torch.Tensor,
        gloss_mask: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        condition: torch.Tensor,
        counts: torch.Tensor | None = None,
    ) -> LossTerms:
        """:meth:`loss` given its :meth:`draws`: no random numbers drawn, so ``torch.compile`` captures it whole
        (``training.compile``) and an eager run's draws stay the same."""
        keep = frame_mask[..., None, None].to(pose.dtype)
        x0 = pose * keep
        z0 = self.normalizer.encode(x0) * keep  # the diffusion representation; padded frames zero
        x_t = self.diffusion.q_sample(z0, t, noise) * keep  # padded frames are zero in x_t
        encoding = self.denoiser.encode_glosses(condition, gloss_mask)
        out = self.denoiser(x_t, t, condition, gloss_mask, frame_mask, encoding=encoding)
        pred = self.normalizer.decode(out.x0) * keep  # pose units
        w = self.loss_cfg
        weight = self.joint_weight if w.hand_weight != 1.0 else None
        if w.joint_space == "model":
            l_joint = joint_loss(out.x0, z0, frame_mask, weight)
        else:
            l_joint = joint_loss(pred, x0, frame_mask, weight)
        l_bone = self.bone_loss(pred, x0, frame_mask)
        total = l_joint + w.bone_weight * l_bone
        zero = pose.new_zeros(())
        l_scg = zero
        if self.scg is not None:
            l_scg = self.scg.loss(out.features, frame_mask, gloss, gloss_mask, t, counts)
            total = total + w.scg_weight * l_scg
        l_len = zero
        if self.denoiser.length_head is not None:
            # detached unless model.length_head_grad: the length loss then never trains the gloss encoder
            enc = encoding if self.denoiser.cfg.length_head_grad else encoding.detach()
            l_len = length_loss(self.denoiser.length_head(enc, gloss_mask), frame_mask.sum(1))
            total = total + w.length_weight * l_len
        return LossTerms(total, l_joint, l_bone, l_scg, l_len)

    @torch.no_grad()
    def generate(
        self,
        gloss: torch.Tensor,
        gloss_mask: torch.Tensor,
        frames: torch.Tensor,
        steps: int | None = None,
        eta: float | None = None,
        generator: Generators = None,
        denoiser: nn.Module | None = None,
        frames_to: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples poses for (B, L) glosses and (B,) frame counts.

        Returns (B, S, J, 3) poses (zero past each length) and the (B, S) frame mask.
        ``generator``: one for the batch, or one per sequence, each drawing its sequence's noise at its own length
        (its poses then do not depend on the batch; give ``frames`` on the host: they are read there).
        ``denoiser`` replaces the model's own (e.g. EMA weights, or the compiled one). ``frames_to``: S at least
        this, the batch padded with frames that change no sequence's poses (a shape a CUDA graph was recorded for).
        """
        net = denoiser if denoiser is not None else self.denoiser
        per_sequence = generator is not None and not isinstance(generator, torch.Generator)
        lengths = frames.long().clamp_min(1).tolist() if per_sequence else None
        frames = frames.to(gloss.device).long().clamp_min(1)
        S = max(int(frames.max()), frames_to or 0)
        frame_mask = torch.arange(S, device=gloss.device)[None] < frames[:, None]
        encoding = net.encode_glosses(gloss, gloss_mask)  # once, not per step
        # what the steps take from the glosses and the timesteps, for all steps at once (a Denoiser; other
        # x_0 predictors, such as tests' oracles, are called with the encoding only)
        prepare = getattr(net, "step_contexts", None)
        timesteps = self.diffusion.sampling_timesteps(steps)
        contexts = iter(prepare(encoding, gloss_mask, frame_mask, timesteps)) if prepare is not None else None

        def x0_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            # the sampler calls this once per timestep, in the order of sampling_timesteps
            step = {} if contexts is None else {"context": next(contexts)}
            return net(x_t, t, gloss, gloss_mask, frame_mask, encoding=encoding, **step).x0

        shape = (gloss.shape[0], S, self.skeleton.num_joints, 3)
        dtype = getattr(net, "dtype", None) or next(net.parameters()).dtype  # a lowered General part keeps it
        x0 = self.diffusion.sample(
            x0_fn,
            shape,
            mask=frame_mask,
            steps=steps,
            eta=eta,
            generator=generator,
            device=gloss.device,
            dtype=dtype,
            lengths=lengths,
        )
        return self.normalizer.decode(x0, hold=True) * frame_mask[..., None, None].to(x0.dtype), frame_mask

    @torch.no_grad()
    def predict_frames(self, gloss: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        """Frame counts (B,) from the length head, rounded, at least 1."""
        return self.denoiser.predict_length(gloss, gloss_mask).round().clamp_min(1).long()


def build_model(cfg: Config, vocab_size: int, skeleton: Skeleton = PT50, with_scg: bool = True) -> FGDM:
    """Builds FGDM from a config; the SCG branch only when enabled and ``with_scg`` (training)."""
    denoiser = Denoiser(skeleton, vocab_size, cfg.model)
    scg = None
    if cfg.model.scg.enabled and with_scg:
        scg = SCGBranch(cfg.model.width, vocab_size, cfg.model.scg, cfg.diffusion.timesteps)
    return FGDM(denoiser, scg, cfg.diffusion, cfg.loss, skeleton)
