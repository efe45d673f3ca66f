"""Two versions of the fused ASGCN kernel (``asgcn.c``) compared in one process, taking turns.

The speed of a shared machine drifts by tens of percent within minutes, so two processes run one after the
other compare the machine's moods as much as the code. Here both libraries are loaded side by side and every
repeat times each in turn on the same tensors; the figure to read is the median of the paired ratios.

    git show 90c6554:src/fgdm/model/kernels/asgcn.c > old.c
    python benchmarks/kernel_ab.py old.c                   # against the package's asgcn.c
    python benchmarks/kernel_ab.py old.c new.c --repeats 40 --only live_sentence
    python benchmarks/kernel_ab.py --pytorch-norm          # the library's Focal LayerNorm against PyTorch's

An older library without the LayerNorm (``rownorm_*``) runs with the Focal blocks' norms in PyTorch, as fgdm
did then.

Measurements (paper.yaml's Focal stage, W_Agg and the mask's separation drawn at random as after training):

- ``kernel_forward``: one ASGCN layer's kernel call for a live sentence (B = 1, S = 125), without gradients;
- ``kernel_train``: one layer's kernel, forward and backward, at B = 8, S = 130;
- ``live_sentence``: 5-step sampling of the paper-size model, B = 1, S = 125, float32;
- ``train_step_paper``: a paper.yaml training step (loss, backward, fused Adam) at B = 8, S = 130;
- ``train_step_synth``: the same for synth.yaml at B = 16, S = 65.

Prints JSON: for each measurement, each version's median and fastest time and the median ratio new / old
of the repeats' pairs. Both versions are built with this CPU's flags (the "native" variant).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import InputError, positive_int, run, shipped  # a sibling module

from fgdm.config import load_config
from fgdm.model import build_model, kernels
from fgdm.model.focal import FocalNorm
from fgdm.model.kernels import build
from fgdm.runtime import keep_freed_memory

MEASUREMENTS = ["kernel_forward", "kernel_train", "live_sentence", "train_step_paper", "train_step_synth"]


def library(source: Path) -> ctypes.CDLL:
    compiler = build.find_compiler()
    if compiler is None:
        raise InputError("no C compiler found (set CC or install gcc)")
    try:  # an old version's source that does not compile, or lacks the kernel's functions, is bad input here
        return build.declare(ctypes.CDLL(str(build.build(compiler, "native", source_file=source))))
    except (RuntimeError, AttributeError) as err:
        raise InputError(f"{source}: not a kernel source this benchmark can load ({err})") from None


MODELS: list[torch.nn.Module] = []  # every model built, so that a side can set how their norms run


def use(lib: ctypes.CDLL, norms: str) -> None:
    """Makes ``lib`` the library that fused_asgcn calls (the loader's cache, set directly: a benchmark's liberty)
    and runs the Focal blocks' LayerNorms as ``norms`` says ("auto": the library, "torch": PyTorch)."""
    build._libraries["native"] = lib
    for model in MODELS:
        for module in model.modules():
            if isinstance(module, FocalNorm):
                module.kernel = norms


def trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """W_Agg and the mask's separation start at zero; give them values, as training does."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "aggregate.weight" in name or "separation_weight" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def model_for(config: str) -> torch.nn.Module:
    torch.manual_seed(0)
    MODELS.append(trained_like(build_model(load_config([shipped(config)]), 1089)))
    return MODELS[-1]


def batch(B: int, S: int, J: int, L: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(2)
    pose = torch.randn(B, S, J, 3, generator=g) * 0.2
    gloss = torch.randint(4, 1089, (B, L), generator=g)
    return pose, torch.ones(B, S, dtype=torch.bool), gloss, torch.ones(B, L, dtype=torch.bool)


def layer_args(model: torch.nn.Module, B: int, S: int, grad: bool) -> kernels.ASGCNArgs:
    """The second Focal block's kernel arguments for random features (leaves that need gradients if ``grad``)."""
    gcn = model.denoiser.focal.blocks[1].gcn
    g = torch.Generator().manual_seed(3)
    h, cond = torch.randn(B, S, gcn.J, gcn.width, generator=g), torch.randn(B, 8, 512, generator=g)
    with torch.no_grad():
        args = gcn.kernel_args(h, cond, torch.ones(B, S, dtype=torch.bool), torch.ones(B, 8, dtype=torch.bool))
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    if grad:
        fields = {k: v if v is None or k == "valid" else v.clone().requires_grad_(True) for k, v in fields.items()}
    return kernels.ASGCNArgs(**fields)


def measurements(which: list[str]) -> dict[str, Callable[[], object]]:
    fns: dict[str, Callable[[], object]] = {}
    needs_paper = {"kernel_forward", "kernel_train", "live_sentence"} & set(which)
    paper = model_for("configs/paper.yaml") if needs_paper else None  # the layers' arguments and the live sentence
    if "kernel_forward" in which:
        live_args = layer_args(paper, 1, 125, grad=False)

        def kernel_forward():
            with torch.no_grad():
                return kernels.fused_asgcn(live_args)

        fns["kernel_forward"] = kernel_forward
    if "kernel_train" in which:
        train_args = layer_args(paper, 8, 130, grad=True)
        upstream = torch.randn(8, 130, 50, 16, generator=torch.Generator().manual_seed(4))
        leaves = [t for t in train_args.tensors() if t is not None and t.requires_grad]

        def kernel_train():
            return torch.autograd.grad(kernels.fused_asgcn(train_args), leaves, upstream)

        fns["kernel_train"] = kernel_train
    if "live_sentence" in which:
        live = paper.eval()  # built by model_for, so its norms follow the sides
        _, _, gloss, gloss_mask = batch(1, 125, 50)

        def live_sentence():
            seed = torch.Generator().manual_seed(0)
            return live.generate(gloss, gloss_mask, torch.tensor([125]), generator=seed)[0]  # the poses

        fns["live_sentence"] = live_sentence
    for name, config, B, S in (
        ("train_step_paper", "configs/paper.yaml", 8, 130),
        ("train_step_synth", "configs/synth.yaml", 16, 65),
    ):
        if name in which:
            fns[name] = training_step(model_for(config).train(), B, S)
    return fns


def training_step(model: torch.nn.Module, B: int, S: int) -> Callable[[], None]:
    inputs = batch(B, S, model.denoiser.output.proj.out_features // 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)

    def step() -> None:
        model.loss(*inputs).total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, nargs="?", help="the version to compare against (an asgcn.c)")
    ap.add_argument("new", type=Path, nargs="?", default=build.SOURCE, help="default: the package's asgcn.c")
    ap.add_argument("--pytorch-norm", action="store_true",
                    help="instead of an old asgcn.c: the new library with the Focal LayerNorms in PyTorch")  # fmt: skip
    ap.add_argument("--repeats", type=positive_int, default=20, help="pairs per measurement (default 20)")
    ap.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=MEASUREMENTS)
    args = ap.parse_args()
    if (args.old is None) == (not args.pytorch_norm):
        ap.error("give an old asgcn.c or --pytorch-norm (one of the two)")
    for source in (args.old, args.new):
        if source is not None and (not source.is_file() or source.suffix != ".c"):
            raise InputError(f"{source}: not a C file (an asgcn.c of fgdm's kernel library, e.g. from git show)")
    keep_freed_memory()  # as the fgdm command does
    new = library(args.new)
    old = new if args.pytorch_norm else library(args.old)
    sides = {  # each side: its library and how the Focal norms run
        "old": (old, "torch" if args.pytorch_norm or not hasattr(old, "rownorm_forward") else "auto"),
        "new": (new, "auto"),
    }
    old_name = f"{args.new}, the Focal LayerNorms in PyTorch" if args.pytorch_norm else str(args.old)
    result: dict[str, object] = {"old": old_name, "new": str(args.new), "threads": torch.get_num_threads()}
    result["norms"] = {side: norms for side, (_, norms) in sides.items()}
    for name, fn in measurements(args.only).items():
        outputs = {}
        for side, setting in sides.items():  # warm-up, and the outputs compared once
            use(*setting)
            outputs[side] = fn()
        times: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.repeats):
            for side, setting in sides.items():
                use(*setting)
                t0 = time.perf_counter()
                fn()
                times[side].append(time.perf_counter() - t0)
        entry: dict[str, object] = {}
        for side, t in times.items():
            entry[f"{side}_median_ms"] = round(statistics.median(t) * 1e3, 2)
            entry[f"{side}_min_ms"] = round(min(t) * 1e3, 2)
        pairs = zip(times["new"], times["old"], strict=True)
        entry["ratio_new_old"] = round(statistics.median(n / o for n, o in pairs), 3)
        if isinstance(outputs["old"], torch.Tensor):
            entry["max_output_difference"] = (outputs["new"] - outputs["old"]).abs().max().item()
        result[name] = entry
        print(name, entry, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    run(main)
