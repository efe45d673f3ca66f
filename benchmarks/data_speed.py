"""What training spends on data, model apart: `fgdm train CONFIG` up to and through its first epochs.

    python benchmarks/data_speed.py                          # configs/synth.yaml: the embedded language
    python benchmarks/data_speed.py --config configs/synth.yaml --set data.path=out/demo/data

The embedded language renders every sample on demand, a few milliseconds each, so where training reads a
sample twice the data path can cost more than a GPU's steps. Timed in the order training runs them:

- ``setup``: the data module (corpora, vocabulary) and the dev dataset;
- ``pose_statistics``: reading the training poses the normaliser's μ and σ come from;
- ``sampler``: the first training loader, whose length buckets need every sample's frame count;
- ``epoch_1``, ``epoch_2``: every training batch, collated (no model);
- ``dev``: one pass over the dev batches a validation takes (``training.val_batches``; the table in
  results/speed.md, made before the dev loader applied it, passed over all of them);
- ``load_ms_per_sample``: ``--load N`` samples of the training corpus loaded alone (rendered, for a synthetic
  corpus; 0 skips it).

Prints JSON (seconds). Runs against any fgdm version that has ``PoseDataModule`` and ``pose_sample``.
"""

from __future__ import annotations

import argparse
import json
import time

from common import count, run, shipped  # a sibling module

from fgdm.config import load_config
from fgdm.data.sources import build_corpus
from fgdm.training.data import PoseDataModule
from fgdm.training.generator import pose_sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/synth.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--load", type=count, default=200, metavar="N", help="samples loaded alone (0: none)")
    args = ap.parse_args()
    cfg = load_config(shipped(args.config), args.set)
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[name] = round(now - clock, 3)
        clock = now

    data = PoseDataModule(cfg.data, cfg.training, cfg.testing.batch_size)
    data.dataset("dev")
    lap("setup")
    frames = sum(len(pose) for pose in pose_sample(data.corpora["train"]))
    lap("pose_statistics")
    loader = data.train_dataloader()
    lap("sampler")
    batches = sum(1 for _ in loader)
    lap("epoch_1")
    sum(1 for _ in loader)
    lap("epoch_2")
    sum(1 for _ in data.val_dataloader())
    lap("dev")
    result = {"config": args.config, "overrides": args.set, "train_batches": batches, "statistics_frames": frames}
    result |= {"seconds": times, "total_s": round(sum(times.values()), 3)}
    if args.load:
        corpus = build_corpus(cfg.data, "train")
        n = min(args.load, len(corpus))
        start = time.perf_counter()
        for i in range(n):
            corpus[i]
        result["load_ms_per_sample"] = round((time.perf_counter() - start) / n * 1000, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    run(main)
