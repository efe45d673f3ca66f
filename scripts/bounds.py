"""The lower bounds of pyproject.toml, their one home, as ``scripts/versions oldest`` installs them: the first line
names the oldest Python that requires-python allows (``python3.11``), then a pip constraint NAME==FLOOR for every
dependency and development tool. A requirement without a lower bound is refused: the oldest versions could not be
tested together.

    python3 scripts/bounds.py [pyproject.toml]
"""

import re
import sys
import tomllib
from pathlib import Path


def bounds(pyproject: Path) -> tuple[str, list[str]]:
    """requires-python's floor as an interpreter's name, and NAME==FLOOR for each requirement."""
    project = tomllib.loads(pyproject.read_text())["project"]
    python = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"])
    if python is None:
        raise ValueError(f"{pyproject}: requires-python {project['requires-python']!r} is not '>=3.N'")
    constraints = []
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        floor = re.search(r">=\s*([^,;\s]+)", requirement)
        if floor is None:
            raise ValueError(f"{pyproject}: {requirement!r} has no lower bound (>=): give it the oldest version tested")
        constraints.append(f"{name}=={floor.group(1)}")
    return f"python{python.group(1)}", constraints


if __name__ == "__main__":
    try:
        python, constraints = bounds(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"bounds.py: error: {err}")
    print("\n".join([python, *constraints]))
