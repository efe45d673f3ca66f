"""benchmarks/quality.py: rows scored by two back-translators never share one table."""

import argparse
import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def quality(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("quality_benchmark", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    return module


def _curve(tmp_path: Path, name: str, gt_wer: float) -> Path:
    ground_truth = {"system": "ground truth", "wer": gt_wer, "bleu4": 15.2, "rouge_l": 30.0, "diversity": 9.5,
                    "wer_counts": {"sub": 1, "del": 2, "ins": 0, "ref": 100}}  # fmt: skip
    point = {"step": 300, "train_seconds": 60.0, "eval_seconds": 5.0, "wer": 50.0, "bleu4": 5.0}
    reference = [ground_truth, {**copy.deepcopy(ground_truth), "system": "mean pose"}]
    doc = {"name": name, "split": "test", "machine": "cpu", "config": {"training": {"batch_size": 16}},
           "reference": reference, "points": [point]}  # fmt: skip
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def _collect(quality, *curves: Path, overwrite: bool = False) -> None:
    quality.collect(argparse.Namespace(dataset="phoenix-synth", curves=[str(c) for c in curves], at=None,
                                       overwrite=overwrite))  # fmt: skip


def test_collect_refuses_curves_of_two_back_translators_before_writing(quality, tmp_path):
    a, b = _curve(tmp_path, "phoenix-synth-full-s0", 12.99), _curve(tmp_path, "phoenix-synth-full-s1", 30.0)
    with pytest.raises(ValueError, match="another back-translator"):
        _collect(quality, a, b)
    assert not list((tmp_path / "results" / "phoenix-synth").iterdir())  # nothing written


def test_collect_keeps_one_reference_and_refuses_a_later_curve_of_another(quality, tmp_path):
    _collect(quality, _curve(tmp_path, "phoenix-synth-full-s0", 12.99), _curve(tmp_path, "phoenix-synth-full-s1", 13.0))
    folder = tmp_path / "results" / "phoenix-synth"
    assert json.loads((folder / "reference.json").read_text())["rows"][0]["wer"] == 12.99
    assert {p.name for p in folder.iterdir()} == {"reference.json", "full-seed0.json", "full-seed1.json"}
    with pytest.raises(ValueError, match=r"reference\.json"):
        _collect(quality, _curve(tmp_path, "phoenix-synth-full-s2", 25.0))
    assert not (folder / "full-seed2.json").exists()


def test_collect_replaces_run_files_only_with_overwrite(quality, tmp_path):
    """The run files under benchmarks/results/quality are committed: collecting a curve again keeps them."""
    curve = _curve(tmp_path, "phoenix-synth-full-s0", 12.99)
    _collect(quality, curve)
    out = tmp_path / "results" / "phoenix-synth" / "full-seed0.json"
    before = out.read_text()
    doc = json.loads(curve.read_text())
    doc["points"][0]["wer"] = 40.0
    curve.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"full-seed0.json exists already: choose another --results, or --overwrite"):
        _collect(quality, curve)
    assert out.read_text() == before
    _collect(quality, curve, overwrite=True)
    assert json.loads(out.read_text())["wer"] == 40.0


def test_curves_cut_by_the_same_minutes_share_one_table_whatever_step_they_reached(quality, tmp_path):
    """gpu_curves.sh stops every curve by time: two seeds of a row end at different steps, yet are one budget."""
    curves = []
    for seed, step, wer in ((0, 4100, 40.0), (1, 3900, 44.0)):
        path = _curve(tmp_path, f"phoenix-synth-full-s{seed}", 13.0)
        doc = json.loads(path.read_text())
        doc["max_minutes"] = 25
        scores = {"bleu1": 30.0, "rouge_l": 30.0, "fid": 1.0, "dtw_mje": {"all": 3.0, "body": 2.0, "hands": 4.0}}
        for row in doc["reference"]:
            row |= scores
        doc["points"] = [{**doc["points"][0], **scores, "step": step, "wer": wer, "cut_by_time": True}]
        path.write_text(json.dumps(doc))
        curves.append(path)
    _collect(quality, *curves)
    _, budgets = quality.load_results("phoenix-synth")
    assert list(budgets) == ["25 min"] and [r["steps"] for r in budgets["25 min"]["full"]] == [4100, 3900]
    # a curve that ended at its last --at step, not by time, is a step budget of its own
    doc = json.loads(curves[0].read_text())
    doc["points"][0] |= {"cut_by_time": False, "step": 3000}
    curves[0].write_text(json.dumps(doc | {"name": "phoenix-synth-full-s2"}))
    _collect(quality, curves[0])
    _, budgets = quality.load_results("phoenix-synth")
    assert list(budgets) == ["25 min", "3,000 steps"] and len(budgets["25 min"]["full"]) == 2
    quality.report(argparse.Namespace(overwrite=False))
    page = (tmp_path / "quality.md").read_text()
    assert "## phoenix-synth — test split, 25 min" in page and "## phoenix-synth — test split, 3,000 steps" in page
    assert "25 min of training (the clock stopped the runs at steps 3,900–4,100)" in page
    assert (tmp_path / "quality.png").stat().st_size > 0


def test_every_ablation_config_is_a_row_of_the_table_and_every_row_a_config(quality):
    """A new configs/ablations/*.yaml is trained and scored by the benchmark only once ROWS names it."""
    configs = {path.stem for path in (ROOT / "configs" / "ablations").glob("*.yaml")}
    rows = [name for name, _, _ in quality.ROWS]
    assert sorted(rows) == sorted(configs), (f"configs/ablations without a row in benchmarks/quality.py's ROWS: "
                                             f"{sorted(configs - set(rows))}; rows without a config: "
                                             f"{sorted(set(rows) - configs)}")  # fmt: skip
