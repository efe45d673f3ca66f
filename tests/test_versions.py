"""scripts/versions tests the oldest versions pyproject.toml allows together: its bounds are read from there."""

import importlib.util
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bounds", ROOT / "scripts" / "bounds.py")
bounds_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bounds_module)


def test_every_requirement_has_a_lower_bound_the_oldest_environment_installs():
    python, constraints = bounds_module.bounds(ROOT / "pyproject.toml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert python == "python" + project["requires-python"].removeprefix(">=")
    assert len(constraints) == len(requirements)
    assert "torch==2.8" in constraints and "lightning==2.5.1" in constraints and "ruff==0.17.5" in constraints


def test_a_requirement_without_a_lower_bound_is_named(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nrequires-python = ">=3.11"\ndependencies = ["torch>=2.8", "numpy"]\n'
        '[project.optional-dependencies]\ndev = ["pytest[x] >= 8, <9"]\n'
    )
    with pytest.raises(ValueError, match=r"'numpy' has no lower bound"):
        bounds_module.bounds(pyproject)
    pyproject.write_text(pyproject.read_text().replace('"numpy"', "\"numpy>=1.26; python_version < '3.13'\""))
    assert bounds_module.bounds(pyproject) == ("python3.11", ["torch==2.8", "numpy==1.26", "pytest==8"])


def test_scripts_versions_says_its_usage_before_any_work():
    done = subprocess.run(["bash", "scripts/versions", "latest"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == "usage: bash scripts/versions oldest|newest [PYTEST_ARGUMENTS...]\n"
    assert not (ROOT / ".versions" / "latest").exists()
