"""The figures of one `benchmarks/gpu_speed.sh OUT` run as Markdown: `python benchmarks/gpu_speed_summary.py OUT`
prints what the script writes to OUT/summary.md."""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
from pathlib import Path

from common import InputError, run  # a sibling module

from fgdm.evaluation.html import read_curves


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _last_json(text: str) -> dict | None:
    """The JSON object a command printed last (fgdm train ends with its result)."""
    start = text.rfind("\n{") + 1  # 0: the output starts with it
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{1000 * seconds:.1f}"


def _machine_rows(out: Path) -> list[str]:
    """Where the figures were measured: the machine each speed.py run names (CPU, threads, torch, GPU)."""
    names = sorted({d["machine"] for p in sorted(out.glob("*.json")) if (d := _json(p)) and d.get("machine")})
    return [f"Measured on {' and '.join(names)}."] if names else []


def _speed_rows(out: Path) -> list[str]:
    rows = ["| run | B × S | train step 32 / bf16-mixed (ms) | 5-step sampling 32 / bf16 (ms) | peak GPU (MB) |",
            "|---|---|---|---|---|"]  # fmt: skip
    for name in ("paper-b64", "paper-b8", "live", "synth"):
        d = _json(out / f"{name}.json")
        if d is None:
            done = (out / f"{name}.json").is_file()
            rows.append(f"| {name} | – | {'failed (see logs/' + name + '.err)' if done else 'not run (yet)'} | | |")
            continue
        train = d.get("train_step_s_by_precision", {"32-true": d["train_step_s"]})
        samp = d.get("sample_s_by_precision", {"32": d["sample_s"]})
        step = f"{_ms(train.get('32-true'))} / {_ms(train.get('bf16-mixed'))}"
        sampling = f"{_ms(samp.get('32'))} / {_ms(samp.get('bf16'))}"
        rows.append(f"| {name} | {d['batch']} × {d['frames']} | {step} | {sampling} | {d.get('peak_gpu_mb', '–')} |")
    return rows


def _train_rows(out: Path, name: str = "train", title: str = "fgdm train configs/synth.yaml") -> list[str]:
    run = _json(out / f"{name}.json")
    if run is None:
        return [f"{title}: not run (yet)"]
    log = out / "logs" / f"{name}.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    result = _last_json(text) or {}
    # the compiled runs log torch's recompilations and graph breaks (TORCH_LOGS=recompiles,graph_breaks): one line
    # per compilation after the first, of the loss or of a frame Dynamo compiles on its own where the loss breaks
    recompiled = text.count("Recompiling function loss_of_draws")
    others = text.count("Recompiling function") - recompiled
    breaks = graph_breaks(text)
    times = "once" if recompiled == 0 else f"{1 + recompiled} times"
    compiles = ""
    if "compiled" in name:
        compiles = (f" The loss compiled {times}; other frames compiled again {others} times; graph breaks at "
                    f"{', '.join(breaks) or 'none'}.")  # fmt: skip
    steps = result.get("steps") or _last_step(out / f"{name}.csv")
    if not steps or not run.get("wall_ms"):
        return [f"{title}: no result (see logs/{name}.log)"]
    seconds, model = run["wall_ms"] / 1000, result.get("train_sequences_per_second", "–")
    loop, late = result.get("steps_per_second"), result.get("late_steps_per_second")
    loop = "–" if loop is None else f"**{loop:.1f} steps/s**"
    late = "–" if late is None else f"**{late:.1f} steps/s**"
    median = result.get("median_steps_per_second")
    median = "" if median is None else f" (its median step: {median:.1f} steps/s, compilations and validations apart)"
    return [f"{title}: {steps} steps; its fit loop (validation, EMA, logging, checkpoints "
            f"included) ran at {loop}, its last half of the steps at {late}{median}; from process start "
            f"(imports, data, model building included) {steps / seconds:.1f} steps/s, {seconds:.1f} s of wall "
            f"clock; {model} sequences/s of model time (rc {run.get('rc')}).{compiles}"]  # fmt: skip


def graph_breaks(log: str) -> list[str]:
    """Where torch's graph-break log (TORCH_LOGS=graph_breaks) says the graph broke, as src-relative file:line, with
    the function it skipped where it says (a break in fgdm.model.compiled's wrapper names the function it runs).
    A break at a place that broke before is logged as "Graph break (user stack suppressed ...) in user code at"."""
    starts = list(re.finditer(r"Graph break (?:\([^)]*\) )?in user code at (\S+)", log))
    places = set()
    ends = [after.start() for after in starts[1:]] + ([len(log)] if starts else [])  # each break's text: to the next
    for here, end in zip(starts, ends, strict=True):
        skipped = re.search(r"Skip calling function `<function (\S+) at", log[here.end() : end])
        places.add(here[1].rsplit("/src/", 1)[-1] + (f" ({skipped[1]})" if skipped else ""))
    return sorted(places)


def _last_step(path: Path) -> int | None:
    try:
        with path.open() as f:
            return max(int(r["step"]) for r in csv.DictReader(f))
    except (OSError, ValueError, KeyError):
        return None


def _loss_rows(out: Path) -> list[str]:
    """The training loss of the four runs over the same steps: the last fifth of the steps every run reached (each
    stops after its minutes, so they may reach different steps), and whether bf16-mixed is within seed noise."""
    curves = {}
    for path in sorted(out.glob("loss-*.csv")):
        points = [(int(step), loss) for step, loss in read_curves(path)["train/loss"]]
        if points:
            curves[path.stem.removeprefix("loss-")] = points
    if not curves:
        return ["bf16-mixed against float32: no loss logged (yet)"]
    last = {run: max(s for s, _ in points) for run, points in curves.items()}
    common = min(last.values())
    means = {
        run: statistics.mean(v for s, v in points if 0.8 * common <= s <= common) for run, points in curves.items()
    }
    rows = [
        f"| run | steps reached | mean training loss, steps {round(0.8 * common) + 1}-{common + 1} |",
        "|---|---|---|",
    ]
    rows += [f"| {run} | {last[run] + 1} | {m:.4f} |" for run, m in means.items()]
    by_precision = {p: [m for run, m in means.items() if run.startswith(p + "-")] for p in ("32-true", "bf16-mixed")}
    if all(len(v) >= 2 for v in by_precision.values()):
        gap = abs(statistics.mean(by_precision["bf16-mixed"]) - statistics.mean(by_precision["32-true"]))
        noise = max(max(v) - min(v) for v in by_precision.values())
        verdict = "within" if gap <= noise else "outside"
        rows.append(f"\nbf16-mixed against float32, means over the seeds: {gap:.4f} apart; the seeds of one precision "
                    f"lie up to {noise:.4f} apart: **{verdict} seed noise**.")  # fmt: skip
    return rows


def _compile_rows(out: Path) -> list[str]:
    d = _json(out / "live-compile.json")
    if d is None:
        return [
            "The live sentence compiled: no result (not run yet, skipped, or it failed or was cut: see "
            "logs/live-compile.err)."
        ]
    samp, first = d.get("sample_s_by_precision", {}), d.get("sample_first_call_s", {})
    how = " through generate_poses" if d.get("api") else ""  # speed.py --api: as a program using fgdm samples
    rows = [f"| live sentence {d['batch']} × {d['frames']}{how}, precision | eager (ms) | compiled (ms) | first "
            "compiled call (s) |", "|---|---|---|---|"]  # fmt: skip
    for p in ("32", "bf16"):
        compiled, first_call = samp.get(p + "+compile"), first.get(p + "+compile", "–")
        rows.append(f"| {p} | {_ms(samp.get(p))} | {_ms(compiled)} | {first_call} |")
    return rows


def _skipped_rows(out: Path) -> list[str]:
    """The steps gpu_speed.sh skipped because its time budget would not hold them (OUT/skipped.txt)."""
    try:
        lines = (out / "skipped.txt").read_text(encoding="utf-8").split("\n")
    except OSError:
        return []
    skipped = [line.split() for line in lines if line.strip()]
    if not skipped:
        return []
    return ["Skipped, out of the time budget (BUDGET): " + ", ".join(f"{s[0]} ({s[1]} left)" for s in skipped) + "."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path, metavar="OUT", help="the folder a gpu_speed.sh run wrote")
    out = ap.parse_args().out
    if not (out / "logs").is_dir():
        raise InputError(f"{out}: not the folder of a gpu_speed.sh run (it has no logs/)")
    host = _train_rows(out, "train-host", "The same with every width near zero (the host's share, a diagnostic)")
    compiled = [
        _train_rows(out, "train-compiled", "The same with training.compile: true"),
        _train_rows(out, "train-compiled-graphs", "The same with training.compile: reduce-overhead (CUDA graphs)"),
    ]
    sections = [_machine_rows(out), _speed_rows(out), _train_rows(out), _loss_rows(out), *compiled,
                _compile_rows(out), host]  # fmt: skip
    print("\n\n".join(["# GPU speed", *("\n".join(rows) for rows in [*sections, _skipped_rows(out)] if rows)]))


if __name__ == "__main__":
    run(main)
