"""Packaging: every import declared, torch not pinned, a version to ask for."""

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# import name → distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "PIL": "pillow", "pose_format": "pose-format", "imageio_ffmpeg": "imageio-ffmpeg"}
OPTIONAL = {"tensorboard"}  # used when installed (training logs to it too), never required


def _third_party_imports() -> set[str]:
    found = set()
    for path in (ROOT / "src" / "fgdm").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m != "fgdm" and m not in sys.stdlib_module_names}


def test_every_import_is_declared_and_torch_is_a_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        d.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for d in project["dependencies"]
    }
    missing = {DISTRIBUTION.get(m, m) for m in _third_party_imports() - OPTIONAL} - declared
    assert missing == set()
    torch = next(d for d in project["dependencies"] if d.startswith("torch") and not d.startswith("torchmetrics"))
    assert "==" not in torch and ">=" in torch  # a GPU user keeps their CUDA build
    assert "matplotlib" not in declared and "matplotlib>=3.8" in project["optional-dependencies"]["bench"]


def test_the_version_is_the_installed_one(capsys):
    import fgdm
    from fgdm.cli import main

    assert fgdm.__version__ == version("fgdm")
    assert set(fgdm.__all__) <= set(dir(fgdm))  # the lazily imported API too, for completion
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"fgdm {fgdm.__version__}"
    for module in ("fgdm", "fgdm.cli"):  # python -m runs the command as well
        run = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
        assert (run.returncode, run.stdout.strip()) == (0, f"fgdm {fgdm.__version__}"), run.stderr


def test_the_readme_python_example_runs(tmp_path):
    from pose_format import Pose

    from fgdm import generate_poses, load_for_sampling, save_sequence

    loaded = load_for_sampling()  # the shipped weights
    ids = loaded.vocab.encode_all([["MORGEN", "NORD", "REGEN"]])
    (pose,) = generate_poses(loaded, ids, frames=None, seed=0)
    path = save_sequence(tmp_path / "morgen.pose", pose, fps=loaded.fps)
    assert Pose.read(path.read_bytes()).body.data.shape[0] == len(pose) > 10


def test_every_command_line_option_has_help():
    import argparse

    from fgdm.cli.parser import build_parser

    def walk(parser: argparse.ArgumentParser, path: str):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
                yield path, action

    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in walk(build_parser(), "fgdm")
               if not a.help]  # fmt: skip
    assert missing == []
