"""The DDIM sampling loop (docs/model.md §6, fgdm.diffusion.Diffusion.sample_steps), pinned to golden values.

Part a) drives the loop with analytic x_0 predictors and compares every step with the DDIM update written
out here in float64. Part b) pins the output of a tiny seeded model end to end (representation,
network and loop), so any change to their numerics shows up.
"""

import math

import numpy as np
import pytest
import torch

from fgdm.config import load_config
from fgdm.diffusion import Diffusion, cosine_alphas_cumprod
from fgdm.model import build_model
from helpers import V, activate, batch, tiny

T, STEPS = 100, 5  # the tiny config's diffusion: timesteps 100, sampling_steps 5
TIMESTEPS = [99, 79, 59, 39, 19]  # T − 1 − i · T / I


# --- a) analytic predictors against the equations ------------------------------------------------------


def affine_x0(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A made-up denoiser that depends on both inputs: x̂_0 = x_t / 2 + t / 100."""
    return 0.5 * x_t + t.to(x_t.dtype).view(-1, 1, 1, 1) / 100


def ddim_by_hand(x0_fn, shape, mask, eta, seed):
    """The sampler's trajectory from the DDIM update (Song et al. 2021, Eq. 12), in float64.

    x_T ~ N(0, I); for each visited t with next t':
        ε̂ = (x_t − √ᾱ_t x̂_0) / √(1 − ᾱ_t)
        σ = η · √((1 − ᾱ_t') / (1 − ᾱ_t)) · √(1 − ᾱ_t / ᾱ_t')
        x_t' = √ᾱ_t' x̂_0 + √(1 − ᾱ_t' − σ²) ε̂ + σ z,   z ~ N(0, I) (drawn only when σ > 0)
    Padded frames are held at zero. The noise is drawn in float32 from the same seeded generator, in the
    sampler's order: x_T first, then one z per step but the last.
    """
    abar = cosine_alphas_cumprod(T)  # float64
    g = torch.Generator().manual_seed(seed)
    keep = mask[..., None, None].double()
    x = torch.randn(shape, generator=g).double() * keep
    xs, x0s = [], []
    for i, t in enumerate(TIMESTEPS):
        x0 = x0_fn(x, torch.full((shape[0],), t)) * keep
        xs.append(x)
        x0s.append(x0)
        if i + 1 == len(TIMESTEPS):
            break
        a, a_next = abar[t], abar[TIMESTEPS[i + 1]]
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        sigma = eta * ((1 - a_next) / (1 - a)).sqrt() * (1 - a / a_next).sqrt()
        z = torch.randn(shape, generator=g).double() if sigma > 0 else 0.0
        x = (a_next.sqrt() * x0 + (1 - a_next - sigma**2).sqrt() * eps + sigma * z) * keep
    return xs, x0s


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_every_step_follows_the_ddim_update(eta):
    diff = Diffusion(tiny().diffusion)
    shape = (2, 3, 4, 3)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    seen = []

    def x0_fn(x_t, t):
        assert t.shape == (2,) and t.dtype == torch.long and x_t.dtype == torch.float32
        seen.append(t.tolist())
        return affine_x0(x_t, t)

    gen = torch.Generator().manual_seed(7)
    steps = list(diff.sample_steps(x0_fn, shape, mask=mask, eta=eta, generator=gen))
    assert [s.t for s in steps] == TIMESTEPS and seen == [[t, t] for t in TIMESTEPS]
    xs, x0s = ddim_by_hand(affine_x0, shape, mask, eta, seed=7)
    for step, x, x0 in zip(steps, xs, x0s, strict=True):
        torch.testing.assert_close(step.x_t, x.float(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(step.x0, x0.float(), rtol=1e-5, atol=1e-5)
    assert (steps[-1].x0[1, 2] == 0).all() and (steps[-1].x_t[1, 2] == 0).all()  # the padded frame
    sample = diff.sample(affine_x0, shape, mask=mask, eta=eta, generator=torch.Generator().manual_seed(7))
    assert torch.equal(sample, steps[-1].x0)


def test_deterministic_ddim_with_a_constant_prediction_keeps_its_noise_estimate():
    """η = 0 and x̂_0 ≡ c: the first step sets ε̂ = (z − √ᾱ_99 c) / √(1 − ᾱ_99) from the initial noise x_99 = z,
    and every later x_t' = √ᾱ_t' c + √(1 − ᾱ_t') ε̂ gives back the same ε̂."""
    diff = Diffusion(tiny().diffusion)
    abar = cosine_alphas_cumprod(T).tolist()
    c = torch.tensor([0.5, -1.0, 2.0]).expand(1, 2, 3, 3)
    z = torch.randn(c.shape, generator=torch.Generator().manual_seed(1))
    eps = (z - math.sqrt(abar[99]) * c) / math.sqrt(1 - abar[99])
    steps = list(diff.sample_steps(lambda x_t, t: c, c.shape, eta=0.0, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(steps[0].x_t, z)
    for step in steps[1:]:
        a = abar[step.t]
        torch.testing.assert_close(step.x_t, math.sqrt(a) * c + math.sqrt(1 - a) * eps, rtol=1e-5, atol=1e-5)
    assert all(torch.equal(step.x0, c) for step in steps)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_the_true_x0_recovers_it(eta):
    diff = Diffusion(load_config("configs/paper.yaml").diffusion)
    x0 = torch.randn(2, 7, 50, 3)
    seen = []

    def oracle(x_t, t):
        seen.append(int(t[0]))
        return x0

    out = diff.sample(oracle, x0.shape, eta=eta, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0)
    assert seen == [999, 799, 599, 399, 199]


# --- b) a tiny seeded model end to end -------------------------------------------------------------


def test_the_same_seed_gives_identical_samples():
    model = build_model(tiny(), V, with_scg=False).eval()
    _, fm, gloss, gm = batch()
    frames = fm.sum(1)
    a, mask = model.generate(gloss, gm, frames, generator=torch.Generator().manual_seed(3))
    b, _ = model.generate(gloss, gm, frames, generator=torch.Generator().manual_seed(3))
    c, _ = model.generate(gloss, gm, frames, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 12, 50, 3) and torch.equal(mask, fm) and (a[~mask] == 0).all()


def _loaded():
    """A tiny seeded model (PyTorch ASGCN) for generate_poses."""
    from fgdm.data.vocab import SPECIALS, Vocabulary
    from fgdm.sampling import LoadedModel

    torch.manual_seed(0)
    cfg = tiny(**{"model.focal.kernel": "torch"})
    model = activate(build_model(cfg, V, with_scg=False)).eval()
    return LoadedModel(model, cfg, Vocabulary([*SPECIALS, *(f"G{i}" for i in range(V - 4))]), 0)


def test_sampling_warns_of_sequences_far_longer_than_the_training_ones():
    """The longest training sequence travels with the weights (a buffer of the pose statistics): sampling says
    when a sequence is more than 1.5 times as long; nothing where it was not recorded (older checkpoints)."""
    import warnings

    from fgdm import LongSequenceWarning
    from fgdm.sampling import generate_poses

    loaded = _loaded()
    loaded.model.normalizer.longest.fill_(10)
    with pytest.warns(LongSequenceWarning, match=r"1 sequence\(s\) longer than 1.5 × the longest the model was "
                      r"trained on \(10 frames\), e.g. gloss sequence 1 \(16 frames\)"):  # fmt: skip
        generate_poses(loaded, [[5, 6], [7, 8]], [15, 16])
    state = loaded.model.normalizer.state_dict()
    assert int(state.pop("longest")) == 10
    loaded.model.normalizer.load_state_dict(state)  # a run resumed from an older checkpoint keeps its data's
    assert int(loaded.model.normalizer.longest) == 10
    older = _loaded()
    older.model.normalizer.load_state_dict(state)  # an older checkpoint's statistics, sampled: not recorded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generate_poses(older, [[5, 6], [7, 8]], [15, 16])


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_a_sequences_poses_depend_on_the_seed_and_its_position_not_on_its_batch(eta):
    """generate_poses: each sequence draws its own noise at its own length (initial and η-noise), so batch sizes,
    the longest sequence beside it and a --limit leave its poses as they are (up to float rounding)."""
    from fgdm.sampling import generate_poses

    loaded = _loaded()
    glosses, frames = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [7, 5]], [9, 14, 5, 11]

    def sample(n=4, **kwargs):
        return generate_poses(loaded, glosses[:n], frames[:n], eta=eta, **kwargs)

    together = sample(batch_size=4)
    for other in (sample(batch_size=1), sample(batch_size=3), sample(n=2, batch_size=4)):
        for a, b in zip(together, other, strict=False):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    again, reseeded = sample(batch_size=4), sample(batch_size=4, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(together, again, strict=True))
    assert not any(np.allclose(a, b, atol=1e-3) for a, b in zip(together, reseeded, strict=True))
    # the same glosses at another position are another draw
    assert not np.allclose(together[0][:5], generate_poses(loaded, [[9], glosses[0]], [3, 9], eta=eta)[1][:5])


# (sequence, frame, joint) entries pinned below: first and last valid frames, body, wrist and hand joints
ENTRIES = [(0, 0, 0), (0, 11, 7), (1, 7, 49), (2, 4, 8)]


def golden_sample(eta: float) -> torch.Tensor:
    """Poses (3, 12, 50, 3) from the tiny model (PyTorch ASGCN, no C kernel), seeded throughout."""
    torch.manual_seed(0)
    model = activate(build_model(tiny(**{"model.focal.kernel": "torch"}), V, with_scg=False)).eval()
    _, fm, gloss, gm = batch()  # 12, 8 and 5 frames
    sample, _ = model.generate(gloss, gm, fm.sum(1), eta=eta, generator=torch.Generator().manual_seed(3))
    return sample


def summary(sample: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean and mean absolute value over the valid frames (accumulated in float64, so the
    summation order cannot matter at this tolerance), then the xyz of each of ENTRIES: 18 numbers."""
    x = sample.double()
    entries = torch.tensor([12, 8, 5], dtype=torch.float64) * 50 * 3
    picked = torch.stack([x[e] for e in ENTRIES]).flatten()
    return torch.cat([x.sum((1, 2, 3)) / entries, x.abs().sum((1, 2, 3)) / entries, picked])


# Regenerate (only after a deliberate change to the loop, the representation or the network) with
#     python tests/test_sampling_loop.py
# and paste its output over GOLDEN. Rows: the three sequences' mean and mean |x|, then ENTRIES' xyz.
# fmt: off
GOLDEN = {
    1.0: [
        -0.094073283, -0.074149323, -0.09866944,  # mean
        0.46243893, 0.46163194, 0.4515192,  # mean |x|
        0.074991487, -0.33354628, 0.91282499,  # (0, 0, 0)
        0.0018895995, -0.099315241, -0.1291253,  # (0, 11, 7)
        0.27238187, 0.58251369, 0.3213166,  # (1, 7, 49)
        -0.94383961, 0.43757483, -0.69164103,  # (2, 4, 8)
    ],
    0.0: [
        -0.095041941, -0.06863559, -0.099854632,  # mean
        0.46437095, 0.4610606, 0.45127743,  # mean |x|
        0.049477819, -0.36756122, 0.98660493,  # (0, 0, 0)
        -0.016116433, -0.077655293, -0.16673249,  # (0, 11, 7)
        0.23596856, 0.56014574, 0.38223758,  # (1, 7, 49)
        -0.9063397, 0.57925403, -0.69975781,  # (2, 4, 8)
    ],
}
# fmt: on


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_a_tiny_seeded_model_samples_the_golden_poses(eta):
    sample = golden_sample(eta)
    assert sample.shape == (3, 12, 50, 3) and sample.dtype == torch.float32
    torch.testing.assert_close(summary(sample), torch.tensor(GOLDEN[eta], dtype=torch.float64), rtol=0, atol=1e-5)


def test_a_sample_holds_the_coordinates_that_never_moved_in_training():
    torch.manual_seed(0)
    model = activate(build_model(tiny(**{"model.focal.kernel": "torch"}), V, with_scg=False)).eval()
    _, fm, gloss, gm = batch()
    free, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    model.normalizer.fixed[1] = True  # the neck, as fit() finds it in PT data
    model.normalizer.mean[1] = torch.tensor([0.0, 0.0, 0.25])
    held, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    valid = fm[..., None].expand(-1, -1, 3)
    assert torch.equal(held[:, :, 1][valid].view(-1, 3), torch.tensor([0.0, 0.0, 0.25]).expand(int(fm.sum()), 3))
    assert not torch.equal(free[:, :, 1], held[:, :, 1])
    others = [j for j in range(50) if j != 1]
    torch.testing.assert_close(held[:, :, others], free[:, :, others], rtol=0, atol=0)


if __name__ == "__main__":
    print("# fmt: off\nGOLDEN = {")
    for eta in GOLDEN:
        rows = summary(golden_sample(eta)).view(6, 3).tolist()
        print(f"    {eta}: [")
        for row, label in zip(rows, ["mean", "mean |x|", *map(str, ENTRIES)], strict=True):
            print(f"        {', '.join(f'{v:.8g}' for v in row)},  # {label}")
        print("    ],")
    print("}\n# fmt: on")


# --- c) sampling precision -------------------------------------------------------------------------


def test_bf16_sampling_lowers_the_general_part_only_and_stays_close_to_float32():
    """lower_precision casts F2G, the General stage and the output layer; the gloss encoder, the Focal stage
    and the diffusion keep float32, as do the samples, which stay within bfloat16 rounding of float32's."""
    torch.manual_seed(0)
    model = activate(build_model(tiny(), V, with_scg=False)).eval()
    _, fm, gloss, gm = batch()
    reference, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    den = model.denoiser.lower_precision(torch.bfloat16)
    low = {n.split(".")[0] for n, p in den.named_parameters() if p.dtype == torch.bfloat16}
    assert low == {"f2g", "general", "output"} and den.dtype == torch.float32
    sample, mask = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    assert sample.dtype == torch.float32 and (sample[~mask] == 0).all()
    error = (sample - reference).pow(2).mean().sqrt() / reference.std()
    assert 0 < error < 0.02  # bfloat16 did run (not bit-identical), and kept 8 bits of mantissa's worth


def test_one_seed_per_sequence_samples_each_as_alone_wherever_it_stands():
    """generate_poses(seed=[...]): each sequence is sampled as it would be alone with its own seed, so an avatar
    batching requests as they come signs each sentence the same whatever its place; and each pose owns its memory
    (not a view keeping the padded batch alive)."""
    from fgdm.sampling import generate_poses

    loaded = _loaded()
    glosses, frames = [[5, 6, 7], [8, 9], [10, 11, 12, 13]], [9, 14, 5]
    together = generate_poses(loaded, glosses, frames, seed=[7, 9, 11], batch_size=2)
    swapped = generate_poses(loaded, glosses[::-1], frames[::-1], seed=[11, 9, 7])
    for i, seed in enumerate((7, 9, 11)):
        (alone,) = generate_poses(loaded, [glosses[i]], [frames[i]], seed=seed)
        np.testing.assert_allclose(together[i], alone, rtol=0, atol=1e-5)
        np.testing.assert_allclose(swapped[2 - i], alone, rtol=0, atol=1e-5)
        assert together[i].base is None
    assert not np.allclose(together[0], generate_poses(loaded, [glosses[0]], [frames[0]], seed=8)[0], atol=1e-3)
    # lists, arrays and tensors of ids and frame counts are the same request
    as_arrays = generate_poses(loaded, np.array([[5, 6, 7]]), np.array([9]), seed=np.int64(7))
    as_tensors = generate_poses(loaded, torch.tensor([[5, 6, 7]]), torch.tensor([9]), seed=torch.tensor(7))
    np.testing.assert_array_equal(as_arrays[0], as_tensors[0])
    np.testing.assert_allclose(as_arrays[0], together[0], rtol=0, atol=1e-5)


BAD_REQUESTS = [  # (generate_poses' keyword arguments over a valid request of two sequences, what the error says)
    ({"glosses": "G1 G2"}, "glosses: a list of gloss ids per sequence"),
    ({"glosses": [[5], "G1"]}, "gloss sequence 1 is 'G1': give a list of gloss ids"),
    ({"glosses": [["G1"], [5]]}, "gloss sequence 0 is ['G1']"),
    ({"glosses": [5, 6]}, "gloss sequence 0 is 5"),
    ({"glosses": [[5], []]}, "gloss sequence 1 is empty"),
    ({"glosses": [[5], [V]]}, f"gloss sequence 1: id {V} is not in the vocabulary (0 … {V - 1})"),
    ({"glosses": [[-1], [5]]}, "gloss sequence 0: id -1 is not in the vocabulary"),
    ({"frames": [9]}, "1 frame counts for 2 gloss sequences"),
    ({"frames": 9}, "frames: a frame count per sequence, or None for the length head's: expected a list, got 9"),
    ({"frames": [9.5, 4]}, "frames: gloss sequence 0's is 9.5, not a whole number of frames (an int"),
    ({"frames": [None, 4]}, "frames: gloss sequence 0's is None"),
    ({"frames": [9, 0]}, "1 sequence(s) with no frames to sample, e.g. gloss sequence 1 (0 frames)"),
    ({"frames": [0, 4], "names": ["a", "b"]}, "e.g. gloss sequence a (0 frames)"),
    ({"frames": [9, 2001]}, "1 sequence(s) longer than the 2000 frames sampling allows, e.g. gloss sequence 1"),
    ({"names": ["a"]}, "1 names for 2 gloss sequences"),
    ({"batch_size": 0}, "batch_size: a whole number ≥ 1, got 0"),
    ({"batch_size": -1}, "batch_size: a whole number ≥ 1, got -1"),
    ({"eta": float("nan")}, "eta: must be in [0, 1], got nan"),
    ({"eta": -0.5}, "eta: must be in [0, 1], got -0.5"),
    ({"eta": 1.5}, "eta: must be in [0, 1], got 1.5"),
    ({"eta": "0.5"}, "eta: a number in [0, 1], got '0.5'"),
    ({"eta": True}, "eta: a number in [0, 1], got True"),
    ({"seed": -1}, "seed: a whole number from 0 to 2**63 - 1, or one per sequence (2), got -1"),
    ({"seed": [1]}, "or one per sequence (2), got [1]"),
    ({"seed": 0.5}, "seed: a whole number from 0 to 2**63 - 1, or one per sequence (2), got 0.5"),
    ({"seed": True}, "seed: a whole number from 0 to 2**63 - 1, or one per sequence (2), got True"),
    ({"frames": np.array(4)}, "frames: a frame count per sequence, or None for the length head's: expected a list"),
    ({"glosses": [torch.tensor(5), [7]]}, "gloss sequence 0 is tensor(5): give a list of gloss ids"),
    ({"names": "ab"}, "names: one name per sequence, as a list, got 'ab'"),
]


@pytest.mark.parametrize(("change", "says"), BAD_REQUESTS, ids=[says[:40] for _, says in BAD_REQUESTS])
def test_generate_poses_names_each_bad_argument(change, says):
    """The Python API's errors (an avatar's code calls it directly): each bad argument is named, never a raw error
    from deep inside torch or NumPy, and nothing is sampled."""
    from fgdm.sampling import generate_poses

    request = {"glosses": [[5, 6], [7]], "frames": [9, 4], **change}
    with pytest.raises(ValueError) as refused:
        generate_poses(_loaded(), **request)
    assert says in str(refused.value)


def test_length_modes_and_devices_refuse_what_they_cannot_mean():
    from fgdm.choices import LengthMode
    from fgdm.runtime import resolve_device

    with pytest.raises(ValueError, match="the kind is gt, predicted or fixed, got 'bogus'"):
        LengthMode("bogus")  # type: ignore[arg-type]
    for text in (34.9, True, "34.9", "-3", "0"):
        with pytest.raises(ValueError, match="length: "):
            LengthMode.parse(text)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"a whole number of frames, got 3\.0"):
        LengthMode("fixed", 3.0)  # type: ignore[arg-type]
    assert LengthMode.parse("34") == LengthMode.parse(34) == LengthMode.parse(np.int64(34)) == LengthMode("fixed", 34)
    assert resolve_device(None) == resolve_device("AUTO") == resolve_device("auto")
    assert resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(ValueError, match="device 7: use auto, cpu, cuda, cuda:N or mps"):
        resolve_device(7)  # type: ignore[arg-type]


def test_every_seed_and_position_has_its_own_stream():
    """NumPy's SeedSequence reads seed s + 2³²·k at position 0 as seed s at position k: a timestamp in milliseconds
    drew another seed's noise. Seeds below 2³² keep their streams (the golden poses above)."""
    from fgdm.sampling import sequence_seed

    pairs = [(s + 2**32 * k, i) for s in (0, 5, 2**32 - 1) for k in (0, 1, 3, 2**31) for i in (0, 1, 3, 2**31)]
    assert len({sequence_seed(seed, i) for seed, i in pairs}) == len(pairs)
    assert sequence_seed(2**64 + 7, 2) == sequence_seed(7, 2)  # a seed is taken modulo 2⁶⁴, as before
