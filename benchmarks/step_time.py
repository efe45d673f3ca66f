"""Median time of one training step and of 5-step sampling for a config (default: the paper size).

    python benchmarks/step_time.py [--config configs/paper.yaml] [--batch 8 --frames 130 --glosses 8]

Prints one JSON object. Peak resident memory is measured by the process's max RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from fgdm.config import load_config
from fgdm.model import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/paper.yaml")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=130)
    ap.add_argument("--glosses", type=int, default=8)
    ap.add_argument("--vocab-size", type=int, default=1089)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.config, args.set)
    model = build_model(cfg, args.vocab_size)
    B, S, L = args.batch, args.frames, args.glosses
    pose = torch.randn(B, S, 50, 3) * 0.2
    frame_mask = torch.ones(B, S, dtype=torch.bool)
    gloss = torch.randint(4, args.vocab_size, (B, L))
    gloss_mask = torch.ones(B, L, dtype=torch.bool)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)

    def step() -> None:
        terms = model.loss(pose, frame_mask, gloss, gloss_mask)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()

    def timed(fn) -> list[float]:
        fn()  # warm-up
        out = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    model.train()
    train = timed(step)
    model.eval()
    frames = torch.full((B,), S)
    sample = timed(lambda: model.generate(gloss, gloss_mask, frames))
    print(json.dumps({
        "config": args.config, "overrides": args.set, "batch": B, "frames": S, "glosses": L,
        "threads": torch.get_num_threads(),
        "train_step_s": round(statistics.median(train), 3), "train_step_all_s": [round(x, 3) for x in train],
        "sample_s": round(statistics.median(sample), 3), "sample_all_s": [round(x, 3) for x in sample],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
