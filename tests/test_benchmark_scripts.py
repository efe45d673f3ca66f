"""The benchmark scripts as a researcher runs them: what they cannot mean is refused in one line before any work
(no traceback), results already there are not replaced without --overwrite, and a figure says what it is of."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("FGDM_DEBUG", None)
    command = ["bash", *argv] if argv[0].endswith(".sh") else [sys.executable, *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "argv, status, said",
    [
        (["speed.py", "--batch", "-1"], 2, "argument --batch: expected a whole number ≥ 1, got '-1'"),
        (["speed.py", "--repeats", "0"], 2, "argument --repeats: expected a whole number ≥ 1"),
        (["speed.py", "--vocab-size", "4"], 2, "argument --vocab-size: expected a whole number > 4"),
        (["speed.py", "--config", "nope.yaml"], 1, "speed.py: error: nope.yaml: config file not found"),
        (["speed.py", "--device", "tpu"], 1, "speed.py: error: device 'tpu'"),
        (["baselines.py", "DATA", "--ridge", "-0.5"], 2, "argument --ridge: expected a number ≥ 0"),
        (["baselines.py", "/nonexistent-data"], 1, "baselines.py: error: /nonexistent-data: data directory not found"),
        (["dgs_gloss_forms.py", "A", "B", "--form", "backoff", "--rate", "7"], 2, "expected a number from 0 to 1"),
        (["kernel_ab.py", "README.md"], 1, "kernel_ab.py: error: README.md: not a C file"),
        (["data_speed.py", "--load", "-3"], 2, "argument --load: expected a whole number ≥ 0"),
        (["learning_curve.py", "run", "x", "--data", "D", "--max-minutes", "-1"], 2, "expected a number > 0"),
        (["learning_curve.py", "run", "x", "--data", "D", "--at", "5,abc"], 2, "argument --at: expected step counts"),
        (["learning_curve.py", "run", "x", "--data", "D", "--at", "0,500"], 2, "argument --at: expected step counts"),
        (
            ["learning_curve.py", "run", "x", "--data", "/nonexistent-data"],
            1,
            "learning_curve.py: error: /nonexistent-data: not a data directory",
        ),
        (
            ["quality.py", "run", "dgs-pt", "--source", "/nonexistent-data"],
            1,
            "quality.py: error: /nonexistent-data: not a directory",
        ),
        (
            ["quality.py", "run", "dgs-pt", "--source", "/nonexistent-data", "--rows", "full,nope"],
            1,
            "quality.py: error: --rows: unknown row 'nope'",
        ),
        (["quality.py", "run", "dgs-pt", "--source", "S", "--steps", "0"], 2, "argument --steps: expected a whole"),
        (["gpu_speed_summary.py", "/nonexistent-run"], 1, "not the folder of a gpu_speed.sh run"),
        (["gpu_speed.sh", "--help"], 2, "usage: [PART=all|main|compile] bash benchmarks/gpu_speed.sh OUT [tiny]"),
        (["gpu_speed.sh", "out", "huge"], 2, "usage:"),
        (["gpu_curves.sh", "carry", "out", "ten"], 2, "usage: bash benchmarks/gpu_curves.sh CARRY OUT MINUTES"),
        (["gpu_curves.sh", "carry", "out", "5"], 2, "carry/synth-bt.ckpt not found (CARRY holds synth-bt.ckpt "),
    ],
)
def test_what_no_one_can_mean_is_refused_in_one_line(tmp_path, argv, status, said):
    done = _run(str(ROOT / "benchmarks" / argv[0]), *argv[1:], cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # nothing begun: the shell scripts' OUT (or a folder named --help) included


def test_results_already_there_are_kept(tmp_path):
    (tmp_path / "scaling.json").write_text("[]\n")
    done = _run("benchmarks/scaling.py", "--frames", "8", "--batches", "1", "--out", str(tmp_path))
    assert done.returncode == 1 and "scaling.json exists already" in done.stderr and "--overwrite" in done.stderr
    assert (tmp_path / "scaling.json").read_text() == "[]\n" and not (tmp_path / "scaling.png").exists()
    (tmp_path / "table.md").write_text("written by hand\n")
    done = _run("benchmarks/beam_search.py", "BT.ckpt", "DATA", "--out", str(tmp_path / "table.md"))
    assert done.returncode == 1 and "table.md exists already" in done.stderr
    assert (tmp_path / "table.md").read_text() == "written by hand\n"
    done = _run("benchmarks/speed.py", "--profile", str(tmp_path / "table.md"))  # refused before any timing
    assert done.returncode == 1 and "table.md exists already: choose another --profile FILE" in done.stderr
    assert (tmp_path / "table.md").read_text() == "written by hand\n"
    (tmp_path / "loss.png").write_text("a committed plot\n")
    done = _run("benchmarks/precision_curves.py", str(tmp_path / "loss.png"), "T=/nonexistent-run")
    assert done.returncode == 1 and "loss.png exists already: choose another OUT.png, or --overwrite" in done.stderr
    assert (tmp_path / "loss.png").read_text() == "a committed plot\n"
    done = _run("benchmarks/beam_search.py", "BT.ckpt", "DATA", "--hyp", f"ours={tmp_path / 'typo'}", "--out",
                str(tmp_path / "new.md"))  # fmt: skip
    assert done.returncode == 1 and "--hyp ours=" in done.stderr and "expected NAME=DIR" in done.stderr


def test_curves_tables_and_plots_already_there_are_kept(tmp_path):
    """learning_curve.py and quality.py write into benchmarks/results by default: nothing there is replaced
    without --overwrite, and the refusal comes before any work (no data, checkpoint or back-translator read)."""
    curves, data = tmp_path / "curves", tmp_path / "data"
    curves.mkdir()
    data.mkdir()
    kept = {curves / name: f"{name}, written before\n" for name in ("c.json", "s.json", "learning_curves.md")}
    kept[tmp_path / "quality.md"] = "the committed table\n"
    for path, text in kept.items():
        path.write_text(text)
    lc = "benchmarks/learning_curve.py"
    for argv, said in [
        ([lc, "run", "c", "--data", str(data), "--results", str(curves), "--work", str(tmp_path / "work")],
         "c.json: the curve exists; --resume extends it, --overwrite starts it afresh"),
        ([lc, "sampling", "s", "--checkpoint", "CKPT", "--data", "DATA", "--bt", "BT", "--results", str(curves)],
         "s.json exists already: choose another NAME, or --overwrite to replace it"),
        ([lc, "report", "--results", str(curves)],
         "learning_curves.md exists already: choose another --out, or --overwrite to replace it"),
        (["benchmarks/quality.py", "report", "--results", str(tmp_path / "quality")],
         "quality.md exists already: choose another --results, or --overwrite to replace it"),
    ]:  # fmt: skip
        done = _run(*argv)
        assert done.returncode == 1, done.stderr
        name = Path(argv[0]).name
        where = tmp_path.resolve() / ("curves" if "quality" not in name else "")  # as the scripts name it
        assert done.stderr == f"{name}: error: {where / said}\n"
    assert {p: p.read_text() for p in kept} == kept
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["curves", "data", *(p.name for p in kept)])


def test_warnings_are_one_line_even_after_lightning_sets_its_format():
    probe = """import sys, warnings
sys.argv, sys.path[:0] = ["probe.py"], ["benchmarks"]
import common

def main():
    from fgdm.cli import quiet_lightning

    quiet_lightning()  # imports Lightning, which puts its own warning format, and sets fgdm's
    warnings.warn("careful", UserWarning)

common.run(main)
"""
    done = _run("-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "probe.py: warning: careful\n"


@pytest.mark.parametrize(
    "argv, defaults",
    [
        (["speed.py"], ["--set KEY=VALUE a config override", "(default 8)", "(default 130)", "(default cpu, unlike"]),
        (["learning_curve.py", "run"], ["(default 500,1000,1500,2000,3000)", "(default runs/learning_curve)"]),
        (["learning_curve.py", "sampling"], ["--overwrite replace an existing NAME.json"]),
        (["beam_search.py"], ["to back-translate (default test)", "beam sizes (default 4 8)"]),
        (["quality.py", "report"], ["--overwrite replace the quality.md and quality.png"]),
    ],
)
def test_help_gives_the_defaults(argv, defaults):
    done = _run(str(ROOT / "benchmarks" / argv[0]), *argv[1:], "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # as argparse wrapped it for any width
    assert all(d in text for d in defaults), text


def test_a_speed_figure_says_what_it_is_of():
    done = _run("benchmarks/speed.py", "--config", "configs/tiny.yaml", "--batch", "1", "--frames", "8",
                "--repeats", "1", "--quick")  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["train_step_s"] > 0 and figures["sample_s"] > 0
    assert (figures["config"], figures["batch"], figures["frames"], figures["glosses"], figures["repeats"]) == (
        ["configs/tiny.yaml"], 1, 8, 8, 1)  # fmt: skip
    assert figures["kernel"] in ("c", "torch") and "threads, torch " in figures["machine"]
    assert figures["api"] is False


def test_speed_samples_through_the_api_when_asked():
    """--api: the sampling precisions timed through generate_poses, each on its own copy made ready for sampling."""
    done = _run("benchmarks/speed.py", "--config", "configs/tiny.yaml", "--batch", "2", "--frames", "8",
                "--repeats", "1", "--precision", "32", "bf16", "--api")  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["api"] is True and set(figures["sample_s_by_precision"]) == {"32", "bf16"}
    assert all(t > 0 for t in figures["sample_s_by_precision"].values())


def test_the_gpu_summary_names_the_function_a_graph_break_skipped(monkeypatch):
    """A break in fgdm.model.compiled's wrapper is named by the function it runs outside the graphs: its file and
    line alone would be the same for every such function."""
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its sibling module, as running it puts there
    spec = importlib.util.spec_from_file_location("gpu_speed_summary", ROOT / "benchmarks" / "gpu_speed_summary.py")
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    prefix = "V1202 03:21:58.205000 5052 torch/_dynamo/symbolic_convert.py:5127] [4/0] [__graph_breaks] "
    log = "\n".join(prefix + line for line in [
        "Graph break in user code at /home/u/fgdm/src/fgdm/model/compiled.py:57",
        "Graph Break Reason: Encountered graph break when attempting to trace CALL_FUNCTION_EX",
        "  Explanation: Skip calling function `<function SCGBranch._decode at 0x7ff25bf4a980>` since it was wrapped",
        "Graph break (user stack suppressed due to duplicate graph break) in user code at "
        "/home/u/fgdm/src/fgdm/model/compiled.py:57",  # torch's line for a place that broke before
        "  Explanation: Skip calling function `<function _ctc at 0x7ff25bf4a981>` since it was wrapped",
        "Graph break in user code at /home/u/fgdm/src/fgdm/model/scg.py:98",
        "Graph Break Reason: Data-dependent branching",
        "Graph break in user code at /home/u/fgdm/src/fgdm/model/compiled.py:57",
        "  Explanation: Skip calling function `<function _ctc at 0x7ff25bf4a981>` since it was wrapped",
    ])  # fmt: skip
    assert summary.graph_breaks("") == summary.graph_breaks(prefix + "no break logged") == []  # an eager run's log
    assert summary.graph_breaks(log) == [
        "fgdm/model/compiled.py:57 (SCGBranch._decode)",
        "fgdm/model/compiled.py:57 (_ctc)",
        "fgdm/model/scg.py:98",
    ]


def test_benchmarks_refuse_what_would_lose_or_misstate_results(tmp_path, trained):
    """A curve's run that another --results holds, a JSON that is no curve, a kernel source that does not build,
    two checkpoints whose rows would share a label: each refused in one line, before any work."""
    (data := tmp_path / "data").mkdir()
    (tmp_path / "w" / "t1" / "checkpoints").mkdir(parents=True)
    (tmp_path / "w" / "t1" / "checkpoints" / "last.ckpt").write_bytes(b"")
    done = _run(str(ROOT / "benchmarks" / "learning_curve.py"), "run", "t1", "--data", str(data), "--bt", "bt.ckpt",
                "--work", str(tmp_path / "w"), "--results", str(tmp_path / "r"))  # fmt: skip
    assert done.returncode == 1 and "t1: a curve's training run is there" in done.stderr, done.stderr
    (curve := tmp_path / "sampling.json").write_text('{"rows": []}')
    done = _run(str(ROOT / "benchmarks" / "quality.py"), "collect", "phoenix-synth", str(curve), "--results",
                str(tmp_path / "q"))  # fmt: skip
    assert done.returncode == 1 and "sampling.json: not a learning curve" in done.stderr, done.stderr
    (source := tmp_path / "old.c").write_text("int x = ;\n")
    done = _run(str(ROOT / "benchmarks" / "kernel_ab.py"), str(source), "--repeats", "1")
    assert done.returncode == 1 and "old.c: not a kernel source this benchmark can load" in done.stderr, done.stderr
    for copy in ("c1", "c2"):
        (tmp_path / copy).mkdir()
        shutil.copy(trained / "checkpoints" / "last.ckpt", tmp_path / copy / "last.ckpt")
    from fgdm.cli import main

    assert main(["synth", "--out", str(data), "--num-train", "4", "--num-dev", "2", "--num-test", "2", "--quiet",
                 "--overwrite"]) == 0  # fmt: skip
    done = _run(str(ROOT / "benchmarks" / "baselines.py"), str(data), "--split", "dev", "--skip-frames", "3",
                "--results", str(tmp_path / "b"), "--checkpoint", str(tmp_path / "c1" / "last.ckpt"),
                str(tmp_path / "c2" / "last.ckpt"))  # fmt: skip
    assert done.returncode == 1 and "two checkpoints read as 'last, step 20'" in done.stderr, done.stderr


def test_the_gpu_script_keeps_a_folder_of_something_else_and_its_summary_names_the_machine(tmp_path):
    (tmp_path / "notes.md").write_text("mine\n")
    done = _run(str(ROOT / "benchmarks" / "gpu_speed.sh"), str(tmp_path), "tiny")
    assert done.returncode == 2 and "holds files and is no earlier run's (no logs/)" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]
    (tmp_path / "logs").mkdir()  # an earlier run's folder, as the device's second command (PART=compile) finds it
    figures = {"batch": 1, "frames": 125, "train_step_s": 0.01, "sample_s": 0.005, "machine": "EPYC, 16 threads, H200"}
    (tmp_path / "live.json").write_text(json.dumps(figures))
    done = _run(str(ROOT / "benchmarks" / "gpu_speed_summary.py"), str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Measured on EPYC, 16 threads, H200." in done.stdout
    assert "| live | 1 × 125 | 10.0 / – | 5.0 / – |" in done.stdout
