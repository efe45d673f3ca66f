"""How often torch.compile compiles the training loss as batch shapes vary, and whether each compiled step runs.

A sequence of (batch, frames, glosses) shapes, as a training epoch meets them (full batches, a partial one, new
frame and gloss counts, shapes met before), goes through ``FGDM.loss_of_draws`` compiled as ``training.compile``
compiles it, forward and backward, at the host-bound proxy's sizes (synth.yaml, every width near zero, ASGCN
through PyTorch). Prints one line per batch (its seconds: a compilation takes tens of seconds on a GPU machine,
minutes on a 2-core CPU; a compiled step milliseconds) and a JSON summary: the batches that ran, the compilations
of the loss and the recompilations of every other function (torch's recompilation log), and the error that
stopped the sequence, if one did.

    python benchmarks/compile_shapes.py [--shapes "4x16x3 4x16x5 …"] [--mode reduce-overhead] [--device cuda]

The loss is compiled by ``fgdm.training.compiling.compiled_loss``, as ``fgdm train`` compiles it: dynamic shapes,
and in the CUDA-graph modes each batch padded to its frame bucket. See benchmarks/results/speed.md, *One
compilation for every frame count*.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter

import torch
from common import run, shipped  # a sibling module

from fgdm.config import load_config
from fgdm.model import build_model
from fgdm.model.compiled import CUDA_GRAPHS, frame_bucket
from fgdm.runtime import resolve_device
from fgdm.training.compiling import compiled_loss

PROXY = [
    "model.width=8", "model.focal.width=2", "model.gloss_encoder.ff=8", "model.general.ff=8",
    "model.scg.conv_width=8", "model.scg.lstm_hidden=4", "model.focal.chunk_frames=0", "model.focal.kernel=torch",
]  # fmt: skip
# full batches of 4 and partial ones of 2; frame counts 16, 24, 32; gloss counts 2 to 6; shapes met before
SHAPES = "4x16x3 4x16x5 4x24x4 2x24x4 4x24x6 4x16x3 2x16x5 4x32x3 4x16x2 2x32x4"


class _Recompilations(logging.Handler):
    """Torch's recompilation log, counted by function: the loss's, and those of the frames Dynamo compiles on their
    own where the loss's graph breaks (at the SCG branch's eager parts; on a CPU with ``model.focal.kernel``
    auto or c, at the C library's calls too), which can compile again as well."""

    def __init__(self) -> None:
        super().__init__()
        self.by_function: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        words = record.getMessage().split()
        if words[:2] == ["Recompiling", "function"]:
            self.by_function[words[2]] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=SHAPES, help="batch×frames×glosses, space-separated")
    parser.add_argument("--mode", default="default", choices=["default", *CUDA_GRAPHS], help="of torch.compile")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    try:
        shapes = [tuple(int(n) for n in shape.split("x", 2)) for shape in args.shapes.split()]
    except ValueError:
        shapes = []
    if not shapes or any(len(shape) != 3 for shape in shapes):
        parser.error(f"--shapes: each shape is batch x frames x glosses, e.g. 4x16x3; got {args.shapes!r}")
    if any(shape[0] < 2 or shape[1] < 4 or shape[2] < 2 for shape in shapes):
        parser.error("--shapes: each batch needs 2 sequences, 4 frames and 2 glosses or more (its second is padded)")
    device = resolve_device(args.device)
    torch._logging.set_logs(recompiles=True)
    recompilations = _Recompilations()
    logging.getLogger("torch._dynamo").addHandler(recompilations)
    torch.manual_seed(0)
    model = build_model(load_config([shipped("configs/synth.yaml")], PROXY), 40).to(device)
    loss = compiled_loss(model.loss_of_draws, args.mode)
    print(f"{len(shapes)} batches on {device}; the first compiles the loss (on a 2-core CPU, minutes)", flush=True)
    ran, error = [], None
    for B, S, L in shapes:
        pose = torch.randn(B, S, 50, 3, device=device)
        frame_mask = torch.ones(B, S, dtype=torch.bool, device=device)
        frame_mask[1, S - 3 :] = False
        gloss = torch.randint(4, 40, (B, L), device=device)
        gloss_mask = torch.ones(B, L, dtype=torch.bool, device=device)
        gloss_mask[1, -1] = False
        batch = (pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask))
        start = time.perf_counter()
        try:
            loss(*batch).total.backward()
        except Exception as e:  # the point: where compiled code fails, and how
            error = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            print(f"{B}x{S}x{L}: failed: {error}", flush=True)
            break
        seconds = time.perf_counter() - start
        shape = f"{B}x{S}x{L}" + (f" (padded to {frame_bucket(S)} frames)" if args.mode in CUDA_GRAPHS else "")
        ran.append({"shape": shape, "seconds": round(seconds, 3)})
        print(f"{shape}: {seconds:.3f} s", flush=True)
    again = recompilations.by_function
    summary = {"batches": len(shapes), "ran": ran, "compilations": 1 + again["loss_of_draws"] if ran else None,
               "other_recompilations": sum(again.values()) - again["loss_of_draws"], "recompiled": dict(again),
               "error": error}  # fmt: skip
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    run(main)
