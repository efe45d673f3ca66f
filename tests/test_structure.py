"""The package's structure: one home per concept, imports only downwards, modules of readable size."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("structure", ROOT / "scripts" / "structure.py")
structure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(structure)


def test_no_import_points_upwards_or_sideways():
    assert structure.violations() == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # a metrics module that imported training would be reported
    fake = tmp_path / "fgdm"
    (fake / "metrics").mkdir(parents=True)
    (fake / "metrics" / "bad.py").write_text("def f():\n    from fgdm.training import train\n")
    monkeypatch.setattr(structure, "SRC", fake)
    (problem,) = structure.violations()
    assert "fgdm.metrics.bad" in problem and "imports fgdm.training" in problem


def test_every_module_has_a_layer():
    units = {structure.unit_of(structure.module_name(p)) for p in structure.SRC.rglob("*.py")}
    homes = {u for _, group in structure.LAYERS for u in group}
    assert units <= homes and set(structure.PURPOSE) == homes


def test_the_structure_drawing_is_current():
    assert (ROOT / "docs" / "structure.md").read_text(encoding="utf-8") == structure.drawing()


def test_modules_stay_readable():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in (ROOT / "src" / "fgdm").rglob("*.py")}  # fmt: skip
    assert {p: n for p, n in sizes.items() if n > 400} == {}
    assert {p: n for p, n in sizes.items() if "/cli/" in p and n > 250} == {}
