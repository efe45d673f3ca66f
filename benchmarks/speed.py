"""Speed and memory of the paper-size FGDM on this machine (issue: benchmarks/speed).

    python benchmarks/speed.py --quick            # the headline figures as one JSON object (< 2 minutes)
    python benchmarks/speed.py --config configs/paper.yaml --batch 8 --frames 130 --glosses 8 --repeats 7
    python benchmarks/speed.py --ops --kernel torch --batch 64 --repeats 1   # operator calls (a GPU proxy)
    python benchmarks/speed.py --batch 1 --frames 125 --repeats 10 --compile sample   # + torch.compile, paired
    python benchmarks/speed.py --batch 1 --frames 125 --repeats 10 --compile sample --api   # through generate_poses

Measures, at B = 8, S = 130, L = 8 by default: the median time of one training step (forward,
backward, Adam; SCG on), the median time of 5-step DDIM sampling, the peak resident memory of the
process, and the checkpoint size (parameters + Adam state). With --floor it also counts the FLOPs of
a training step and of sampling (torch's FlopCounterMode) and divides them by this machine's measured
fp32 matmul rate: the time a perfect implementation would need. With --ops it counts the operator
calls that reach PyTorch's kernels in one training step (forward and backward) and in one sampling
call, and how many of them compute (not views): on a GPU each of those is at least one kernel launch, and
every call costs Python and dispatch time on the host.
With --compile sample (train), every sampling (training) precision is also timed with torch.compile of
the denoiser, as ``load_for_sampling(compile=...)`` compiles it (of ``model.loss_of_draws``, the draws eager, as
``training.compile``, ``dynamic=False``), in turn with the eager ones; the first call of each (compilation included)
is reported as ``*_first_call_s``. On a GPU the compiled denoiser also replays its kernel launches as CUDA graphs
(``mode="reduce-overhead"``; without --api the batch is not padded to a frame bucket, as ``generate_poses`` pads
it).
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import resource
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from common import machine, number, positive_int, refuse_existing, refuse_unwritable, run, shipped  # a sibling module
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from fgdm.choices import PRECISIONS
from fgdm.config import load_config
from fgdm.data.vocab import SPECIALS as SPECIAL_TOKENS
from fgdm.model import build_model
from fgdm.model.asgcn import ASGCN, kernel_applies
from fgdm.model.compiled import compile_module, disable_outside_graphs
from fgdm.model.focal import FocalNorm
from fgdm.runtime import keep_freed_memory, resolve_device

SPECIALS = len(SPECIAL_TOKENS)  # the vocabulary's first ids, which no gloss takes


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matmul throughput in GFLOP/s (median of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


class OpCounter(TorchDispatchMode):
    """Counts the operator calls that reach a backend kernel (autograd's backward ones included), and those
    among them that compute: all but views (view, transpose, expand, detach, ...), which on a GPU change a
    tensor's metadata without launching anything."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.counts[name] += 1
        self.views += func.is_view or name in ("_unsafe_view", "alias", "lift_fresh")
        return func(*args, **(kwargs or {}))

    def total(self) -> int:
        return sum(self.counts.values())

    def computing(self) -> int:
        return self.total() - self.views

    def top(self, n: int = 8) -> dict[str, int]:
        return dict(self.counts.most_common(n))


def _profile(path: Path, device: torch.device, step, sample, model: torch.nn.Module) -> None:
    """torch.profiler's tables (self time, top 40 operators) of one float32 training step and one sampling."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    sections = []
    for name, fn, train in (("training step", step, True), ("5-step sampling", sample, False)):
        model.train(train)
        with torch.set_grad_enabled(train), profile(activities=activities) as prof:
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
        sections.append(f"## {name}\n\n{prof.key_averages().table(sort_by=key, row_limit=40)}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sections), encoding="utf-8")


def _api_samplers(model, cfg, args, device, glosses: list[list[int]], frames: int) -> dict:
    """--api: per sampling precision, and each compiled too with --compile sample, a call of ``generate_poses``
    sampling ``glosses`` at ``frames`` frames from a copy of the model's weights made ready as
    ``load_for_sampling`` makes what it reads (the device has no safetensors, so no export is read back)."""
    from fgdm.data.vocab import Vocabulary
    from fgdm.sampling import generate_poses
    from fgdm.sampling.loading import build_for_sampling, ready_for_sampling

    vocab = Vocabulary([*SPECIAL_TOKENS, *(f"G{i}" for i in range(args.vocab_size - SPECIALS))])
    modes = [False, *(["reduce-overhead" if device.type == "cuda" else True] if "sample" in args.compile else [])]
    samplers = {}
    for precision in args.precision:
        for mode in modes:
            copy_ = build_for_sampling(cfg, args.vocab_size)
            copy_.denoiser.load_state_dict(model.denoiser.state_dict())
            copy_.normalizer.load_state_dict(model.normalizer.state_dict())
            loaded = ready_for_sampling(copy_, cfg, vocab, 0, device, precision, mode)
            name = precision + ("+compile" if mode else "")
            samplers[name] = partial(generate_poses, loaded, glosses, [frames] * len(glosses), seed=0)
    return samplers


def _lowered(denoiser: torch.nn.Module) -> torch.nn.Module:
    """A copy of the denoiser with its General part in bfloat16 (what ``fgdm generate --precision bf16`` samples)."""
    return copy.deepcopy(denoiser).lower_precision(torch.bfloat16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", default=["configs/paper.yaml"],
                    help="config files, later ones override (default configs/paper.yaml)")  # fmt: skip
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override, as fgdm train --set (repeatable; default none)")  # fmt: skip
    ap.add_argument("--batch", type=positive_int, default=8, help="sequences per batch, B (default %(default)s)")
    ap.add_argument("--frames", type=positive_int, default=130, help="frames per sequence, S (default %(default)s)")
    ap.add_argument("--glosses", type=positive_int, default=8, help="glosses per sequence, L (default %(default)s)")
    ap.add_argument("--vocab-size", type=number(int, lambda n: n > SPECIALS, f"a whole number > {SPECIALS}"),
                    default=1089, help="glosses known, the special tokens included (PHOENIX14T: 1089)")  # fmt: skip
    ap.add_argument("--repeats", type=positive_int, help="timed calls of each (default 5, --quick 3)")
    ap.add_argument("--quick", action="store_true",
                    help="the four headline figures and what they are of, 3 repeats unless --repeats")  # fmt: skip
    ap.add_argument("--floor", action="store_true", help="also count FLOPs and compute the floor")
    ap.add_argument("--ops", action="store_true", help="also count operator calls per step and per sampling")
    ap.add_argument("--device", default="cpu",
                    help="auto, cpu, cuda, cuda:N or mps (default cpu, unlike fgdm's auto: a GPU is measured only "
                    "when asked for)")  # fmt: skip
    ap.add_argument("--compile", nargs="+", choices=["sample", "train"], default=[],
                    help="also time torch.compile'd sampling and/or training steps")  # fmt: skip
    ap.add_argument("--api", action="store_true",
                    help="sample as a program using fgdm does: a copy of the weights made ready as "
                    "load_for_sampling makes what it reads (its precision and compile), sampled by generate_poses "
                    "(one generator per sequence, the poses copied to the host; with CUDA graphs each batch padded "
                    "to its frame and gloss buckets)")  # fmt: skip
    ap.add_argument("--kernel", choices=["auto", "c", "torch"], help="model.focal.kernel (default: the config's)")
    ap.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["32"],
                    help="sampling precisions (fgdm generate --precision), timed in turn in each repeat; "
                    "sample_s is the first one's; a bf16 copy of the denoiser adds to the peak memory")  # fmt: skip
    ap.add_argument("--train-precision", nargs="+", choices=["32-true", "bf16-mixed"], default=["32-true"],
                    help="training precisions (training.precision), timed in turn in each repeat; train_step_s is "
                    "the first one's")  # fmt: skip
    ap.add_argument("--profile", metavar="FILE",
                    help="also write torch.profiler's operator tables of one training step and one sampling to FILE "
                    "(with CUDA times on a GPU)")  # fmt: skip
    ap.add_argument("--overwrite", action="store_true", help="replace the --profile FILE if it exists")
    args = ap.parse_args()
    if args.profile:  # before the work, not after it
        refuse_existing([Path(args.profile)], args.overwrite, "--profile FILE")
        if Path(args.profile).is_dir():
            raise ValueError(f"--profile {args.profile}: a directory, not a file")
        refuse_unwritable(Path(args.profile))
    keep_freed_memory()  # as the fgdm command does
    args.repeats = args.repeats or (3 if args.quick else 5)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    overrides = args.set + ([f"model.focal.kernel={args.kernel}"] if args.kernel else [])
    cfg = load_config([shipped(c) for c in args.config], overrides)
    if device.type == "cuda":  # float32 matmuls and convolutions in TF32 where the config says so, as fgdm train
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = cfg.training.tf32
    model = build_model(cfg, args.vocab_size).to(device)
    B, S, L = args.batch, args.frames, args.glosses
    pose = torch.randn(B, S, 50, 3, device=device) * 0.2
    frame_mask = torch.ones(B, S, dtype=torch.bool, device=device)
    gloss = torch.randint(SPECIALS, args.vocab_size, (B, L), device=device)
    gloss_mask = torch.ones(B, L, dtype=torch.bool, device=device)
    frames = torch.full((B,), S, device=device)
    counts = torch.tensor([[S, L]] * B)  # the frame and gloss counts on the host, as a batch carries them
    # fgdm train's optimizer for each training precision, as fgdm.training.optim.optimizer builds it (fused Adam,
    # PyTorch's default under 16-mixed); built here so that the peak memory does not count Lightning's import
    opts: dict[str, torch.optim.Optimizer] = {}

    def optimizer_for(precision: str) -> torch.optim.Optimizer:
        if precision not in opts:
            fused = None if precision == "16-mixed" else True
            opts[precision] = torch.optim.Adam(model.parameters(), lr=cfg.training.lr, fused=fused)
        return opts[precision]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # as training.compile: the draws eager, the rest compiled
    if args.compile:
        disable_outside_graphs()
    compiled_loss = torch.compile(model.loss_of_draws, dynamic=False) if "train" in args.compile else None

    def step(precision: str = "32-true", compiled: bool = False) -> None:  # as fgdm's Lightning module does:
        loss = compiled_loss if compiled else model.loss_of_draws  # gradients freed right after the step
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            terms = loss(pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask), counts)
        terms.total.backward()
        optimizer_for(precision).step()
        optimizer_for(precision).zero_grad(set_to_none=True)

    def sample(denoiser=None) -> None:
        model.generate(gloss, gloss_mask, frames, denoiser=denoiser)

    first_calls: dict[str, float] = {}

    def timed(fns: dict) -> dict[str, list[float]]:
        """Each function's times, the functions taking turns in every repeat (a paired comparison)."""
        for name, fn in fns.items():  # warm-up (and compilation)
            t0 = time.perf_counter()
            fn()
            sync()
            first_calls[name] = round(time.perf_counter() - t0, 3)
        out: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                sync()
                out[name].append(time.perf_counter() - t0)
        return out

    model.train()
    steps = {p: partial(step, p) for p in args.train_precision}
    if "train" in args.compile:
        steps |= {f"{p}+compile": partial(step, p, True) for p in args.train_precision}
    train_by = timed(steps)
    train = train_by[args.train_precision[0]]
    model.eval()
    if args.api:
        samplers = _api_samplers(model, cfg, args, device, gloss.tolist(), S)
    else:
        samplers = {p: partial(sample, _lowered(model.denoiser) if p == "bf16" else None) for p in args.precision}
    if "sample" in args.compile and not args.api:
        # as load_for_sampling(compile=...) compiles; on a GPU with CUDA graphs: the launches replayed
        mode = "reduce-overhead" if device.type == "cuda" else True
        samplers |= {
            f"{p}+compile": partial(sample, compile_module(_lowered(model.denoiser) if p == "bf16" else model.denoiser,
                                                           mode))
            for p in args.precision
        }  # fmt: skip
    with torch.no_grad():
        samp_by = timed(samplers)
    samp = samp_by[args.precision[0]]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the checkpoint is written
    with tempfile.TemporaryDirectory() as tmp:  # to disk: an in-memory buffer would add its size to the RSS
        path = Path(tmp) / "checkpoint.pt"
        state = {"state_dict": model.state_dict(), "optimizer": optimizer_for(args.train_precision[0]).state_dict()}
        torch.save(state, path)
        checkpoint_mb = path.stat().st_size / 2**20
    result = {
        "train_step_s": round(statistics.median(train), 3),
        "sample_s": round(statistics.median(samp), 3),
        "peak_rss_mb": round(peak_mb, 1),
        "checkpoint_mb": round(checkpoint_mb, 1),
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result["tf32"] = bool(cfg.training.tf32)
    kernel = "c" if kernel_applies(cfg.model.focal.kernel, pose) else "torch"  # what ASGCN ran as (float32)
    result |= {"config": args.config, "overrides": overrides, "batch": B, "frames": S, "glosses": L,
               "repeats": args.repeats, "kernel": kernel, "api": args.api, "machine": machine(str(device))}  # fmt: skip
    if not args.quick:
        result |= {
            "threads": torch.get_num_threads(), "device": str(device), "precision": args.precision[0],
            "train_step_all_s": [round(x, 3) for x in train], "sample_all_s": [round(x, 3) for x in samp],
        }  # fmt: skip
        for name, by in (("train_step", train_by), ("sample", samp_by)):
            if len(by) > 1:  # medians and all times per precision
                result[f"{name}_s_by_precision"] = {p: round(statistics.median(v), 3) for p, v in by.items()}
                result[f"{name}_all_s_by_precision"] = {p: [round(x, 3) for x in v] for p, v in by.items()}
            if args.compile:
                result[f"{name}_first_call_s"] = {p: first_calls[p] for p in by}
    if args.ops:
        model.train()
        with OpCounter() as ops:
            step()
        result["train_step_ops"], result["train_step_top_ops"] = ops.total(), ops.top()
        result["train_step_computing_ops"] = ops.computing()
        model.eval()
        with torch.no_grad(), OpCounter() as ops:
            sample()
        result["sample_ops"], result["sample_top_ops"] = ops.total(), ops.top()
        result["sample_computing_ops"] = ops.computing()
    if args.floor:
        kernel_choices = {m: m.kernel for m in model.modules() if isinstance(m, (ASGCN, FocalNorm))}
        for module in kernel_choices:  # the counter sees PyTorch operators only, not the C library
            module.kernel = "torch"
        model.train()
        with FlopCounterMode(display=False) as fc:
            step()
        step_flops = fc.get_total_flops()
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            sample()
        sample_flops = fc.get_total_flops()
        for module, choice in kernel_choices.items():  # the profile (below) runs as configured
            module.kernel = choice
        rate = matmul_rate() if device.type == "cpu" else float("nan")
        result |= {
            "train_step_gflop": round(step_flops / 1e9, 2), "sample_gflop": round(sample_flops / 1e9, 2),
            "matmul_gflops_per_s": round(rate, 1),
            "train_step_floor_s": round(step_flops / 1e9 / rate, 3),
            "sample_floor_s": round(sample_flops / 1e9 / rate, 3),
        }  # fmt: skip
    print(json.dumps(result, indent=2), flush=True)
    if args.profile:  # after the figures are out: a run cut short while profiling keeps them
        _profile(Path(args.profile), device, step, sample, model)


if __name__ == "__main__":
    run(main)
