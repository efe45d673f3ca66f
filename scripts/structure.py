"""The package's structure drawing: which part of fgdm imports which, layer by layer.

    python scripts/structure.py            # prints docs/structure.md's content
    python scripts/structure.py --write    # rewrites docs/structure.md

Every module belongs to one layer; a module may import its own package and lower layers only, never
upwards or sideways into another package of its layer (tests/test_structure.py checks this on every
run, and that docs/structure.md is current). Imports inside functions count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "fgdm"
DOC = ROOT / "docs" / "structure.md"

# (layer name, packages or modules in it), lowest first.
LAYERS = [
    ("plain text", ["fgdm.encoding"]),
    ("foundations", ["fgdm.config", "fgdm.skeleton", "fgdm.runtime", "fgdm.version", "fgdm.gif"]),
    (
        "data, metrics, maths",
        [
            "fgdm.data",
            "fgdm.metrics",
            "fgdm.representation",
            "fgdm.diffusion",
            "fgdm.losses",
            "fgdm.render",
            "fgdm.checkpoint",
        ],
    ),
    ("sampling choices", ["fgdm.choices"]),
    ("networks", ["fgdm.model"]),
    ("inference", ["fgdm.sampling"]),
    ("evaluation and training", ["fgdm.evaluation", "fgdm.training"]),
    ("interfaces", ["fgdm.cli", "fgdm"]),
    ("entry point", ["fgdm.__main__"]),
]
PURPOSE = {
    "fgdm.encoding": "what a text file that is not UTF-8 likely is (gzip, UTF-16, Windows-1252), for messages",
    "fgdm.config": "frozen, validated config dataclasses and YAML loading",
    "fgdm.skeleton": "the 50-joint PT skeleton as data: joints, bones, parts, adjacency",
    "fgdm.runtime": "process-level settings: memory, signals held while files are swapped, files replaced whole, forks",
    "fgdm.version": "the installed version",
    "fgdm.data": "corpora (PT, synthetic), vocabularies, pose files, batching, statistics",
    "fgdm.metrics": "BLEU, ROUGE-L, WER, DTW-MJE, FID, diversity, hand metrics: pure functions",
    "fgdm.representation": "the pose representation diffusion works in (hands relative, standardised)",
    "fgdm.diffusion": "the cosine schedule, forward process and DDIM sampler",
    "fgdm.losses": "joint, bone and length losses",
    "fgdm.render": "GIF/MP4 animations and PNG contact sheets",
    "fgdm.gif": "GIF files written a frame at a time, at delays that keep the frame rate",
    "fgdm.choices": "what sampling may be asked for (LengthMode, precisions), without torch: for the parser",
    "fgdm.model": "the networks: FGDM's denoiser (Focal, General), SCG branch, back-translator",
    "fgdm.checkpoint": "reading fgdm checkpoints",
    "fgdm.sampling": "the inference API: load_for_sampling, generate_poses, generate_for",
    "fgdm.evaluation": "the evaluation protocol (back-translation, rows, reports)",
    "fgdm.training": "Lightning modules, the shared loop and data module, both trainers",
    "fgdm.cli": "the fgdm command: argument parsing and one library call per command",
    "fgdm": "the public API (lazy) and __version__",
    "fgdm.__main__": "`python -m fgdm`: the fgdm command",
}


def unit_of(module: str) -> str:
    """The layer entry a module belongs to (the longest matching package or module name)."""
    names = [n for _, group in LAYERS for n in group]
    return max((n for n in names if module == n or module.startswith(n + ".")), key=len, default="fgdm")


def layer_of(unit: str) -> int:
    return next(i for i, (_, group) in enumerate(LAYERS) if unit in group)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The fgdm modules a source file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("fgdm"):
            found |= {node.module} if node.module != "fgdm" else {f"fgdm.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fgdm")}
    return found


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) → the importing modules, for imports between different units."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        mod = module_name(path)
        for target in imports(path):
            a, b = unit_of(mod), unit_of(target)
            if a != b:
                out.setdefault((a, b), []).append(mod)
    return out


def violations() -> list[str]:
    """Imports that point upwards, or sideways into another unit of the same layer."""
    bad = []
    for (a, b), mods in edges().items():
        if layer_of(b) >= layer_of(a):
            bad.append(f"{', '.join(sorted(set(mods)))} ({LAYERS[layer_of(a)][0]}) imports {b} "
                       f"({LAYERS[layer_of(b)][0]})")  # fmt: skip
    return bad


def drawing() -> str:
    lines = ["# The structure of fgdm", "",
             "Made by `python scripts/structure.py --write`; `tests/test_structure.py` fails when it is stale or",
             "when an import points upwards. Each box is one home; arrows are imports, always downwards.", "",
             "```mermaid", "flowchart TD"]  # fmt: skip
    for i, (name, group) in reversed(list(enumerate(LAYERS))):
        lines.append(f'  subgraph L{i}["{i}: {name}"]')
        lines += [f'    {u.replace(".", "_")}["{u}"]' for u in group]
        lines.append("  end")
    for a, b in sorted(edges()):
        lines.append(f"  {a.replace('.', '_')} --> {b.replace('.', '_')}")
    lines += ["```", "", "| layer | home | what lives there |", "|---|---|---|"]
    for i, (name, group) in enumerate(LAYERS):
        lines += [f"| {i}: {name} | `{u}` | {PURPOSE[u]} |" for u in group]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(), epilog=__doc__.split("\n\n")[2])
    parser.add_argument("--write", action="store_true", help="rewrite docs/structure.md instead of printing it")
    args = parser.parse_args()
    problems = violations()
    for p in problems:
        print(f"upward import: {p}", file=sys.stderr)
    if args.write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(drawing(), encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        print(drawing(), end="")
    sys.exit(1 if problems else 0)
