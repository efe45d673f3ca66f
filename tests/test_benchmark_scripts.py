"""The benchmark scripts as a researcher runs them: what they cannot mean is refused in one line before any work
(no traceback), results already there are not replaced without --overwrite, and a figure says what it is of."""

import json
import os
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
        (["gpu_speed_summary.py", "/nonexistent-run"], 1, "not the folder of a gpu_speed.sh run"),
        (["gpu_speed.sh", "--help"], 2, "usage: [PART=all|main|compile] bash benchmarks/gpu_speed.sh OUT [tiny]"),
        (["gpu_speed.sh", "out", "huge"], 2, "usage:"),
        (["gpu_curves.sh", "carry", "out", "ten"], 2, "usage: bash benchmarks/gpu_curves.sh CARRY OUT MINUTES"),
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
    done = _run("benchmarks/beam_search.py", "BT.ckpt", "DATA", "--hyp", f"ours={tmp_path / 'typo'}", "--out",
                str(tmp_path / "new.md"))  # fmt: skip
    assert done.returncode == 1 and "--hyp ours=" in done.stderr and "expected NAME=DIR" in done.stderr


def test_a_speed_figure_says_what_it_is_of():
    done = _run("benchmarks/speed.py", "--config", "configs/tiny.yaml", "--batch", "1", "--frames", "8",
                "--repeats", "1", "--quick")  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["train_step_s"] > 0 and figures["sample_s"] > 0
    assert (figures["config"], figures["batch"], figures["frames"], figures["glosses"], figures["repeats"]) == (
        ["configs/tiny.yaml"], 1, 8, 8, 1)  # fmt: skip
    assert figures["kernel"] in ("c", "torch") and "threads, torch " in figures["machine"]
