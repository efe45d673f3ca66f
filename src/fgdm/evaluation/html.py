"""``report.html``: the evaluation to look at, in one self-contained file that opens offline in a browser.

It holds the metrics table with each metric's definition, generated-vs-true animations of the first
sequences (GIFs inlined as data URIs) and the training curves of the evaluated run (loss, dev DTW,
learning rate) drawn as inline SVG from the run's CSV log.
"""

from __future__ import annotations

import base64
import csv
import html
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CURVES = (("train/loss", "training loss"), ("dev/dtw", "dev DTW-MJE"), ("lr", "learning rate"))


@dataclass
class Example:
    """One evaluated sequence to show: its name, glosses, the model's poses and the true ones."""

    name: str
    glosses: str
    generated: np.ndarray
    truth: np.ndarray


def run_logs(checkpoint: Path | str | None) -> list[Path]:
    """The CSV logs of the run a checkpoint belongs to (``RUN/checkpoints/x.ckpt`` → :func:`logs` of RUN)."""
    return [] if checkpoint is None else logs(Path(checkpoint).resolve().parent.parent)


def logs(run: Path | str) -> list[Path]:
    """A training run's CSV logs, ``RUN/logs/version_*/metrics.csv``, oldest first: one per start or ``--resume``."""
    return sorted(Path(run).glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[-1]))


def newest_log(run: Path | str) -> Path | None:
    """A training run's newest CSV log, if there is one."""
    found = logs(run)
    return found[-1] if found else None


def read_curves(paths: Path | Sequence[Path]) -> dict[str, list[tuple[float, float]]]:
    """(step, value) series of the logged metrics in :data:`CURVES`, over one log or a run's logs in order.

    A resumed run starts a new log at the step of the checkpoint it resumed from; what an earlier log holds
    from that step on was trained over again, so the later log replaces it.
    """
    series: dict[str, list[tuple[float, float]]] = {key: [] for key, _ in CURVES}
    for path in [paths] if isinstance(paths, Path) else paths:
        with path.open(encoding="utf-8", newline="") as f:
            rows = [row for row in csv.DictReader(f) if row.get("step") not in (None, "")]
        if not rows:
            continue
        start = min(float(row["step"]) for row in rows)
        for key, points in series.items():
            points[:] = [p for p in points if p[0] < start]
            points.extend((float(row["step"]), float(row[key])) for row in rows if row.get(key) not in (None, ""))
    return series


def svg_chart(points: Sequence[tuple[float, float]], title: str, width: int = 300, height: int = 180) -> str:
    """A small line chart (inline SVG) with its title and the value range."""
    if not points:
        return ""
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    x0, x1, y0, y1 = xs.min(), max(xs.max(), xs.min() + 1), ys.min(), max(ys.max(), ys.min() + 1e-12)
    pad = 28
    px = pad + (xs - x0) / (x1 - x0) * (width - 2 * pad)
    py = height - pad - (ys - y0) / (y1 - y0) * (height - 2 * pad)
    line = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    return (f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
            f'<text x="{pad}" y="16">{html.escape(title)}</text>'
            f'<polyline fill="none" stroke="#2a6fb0" stroke-width="1.5" points="{line}"/>'
            f'<text x="{pad}" y="{height - 8}">step {x0:g}–{x1:g}</text>'
            f'<text x="{width - pad}" y="{pad - 2}" text-anchor="end">{ys.max():.3g}</text>'
            f'<text x="{width - pad}" y="{height - pad + 12}" text-anchor="end">{ys.min():.3g}</text>'
            "</svg>")  # fmt: skip


def _gif(example: Example, fps: float) -> str:
    from fgdm.render import save_animation

    with tempfile.TemporaryDirectory() as tmp:
        path = save_animation(Path(tmp) / "a.gif", [example.generated, example.truth], ["generated", "ground truth"],
                              fps=fps, progress=False)  # fmt: skip
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(example.name)}: generated and true" src="data:image/gif;base64,{data}">'


def write_html(report: dict, path: Path | str, examples: Sequence[Example] = (), fps: float = 25.0) -> Path:
    """Writes the report as one HTML file (see the module docstring)."""
    from fgdm.evaluation.report import COLUMNS, meta_text, reading_note

    meta = report.get("meta", {})
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in COLUMNS)
    rows = "".join("<tr><th>" + html.escape(r["system"]) + "</th>" + "".join(
        f"<td>{value(r)}</td>" for _, value in COLUMNS) + "</tr>" for r in report["rows"])  # fmt: skip
    defs = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in report["definitions"].items())
    facts = "".join(f"<li>{html.escape(k)}: <code>{html.escape(meta_text(v))}</code></li>" for k, v in meta.items()
                    if k != "notes")  # fmt: skip
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in meta.get("notes", ()))
    gifs = "".join(f"<figure>{_gif(e, fps)}<figcaption>{html.escape(e.name)}: {html.escape(e.glosses)}</figcaption>"
                   "</figure>" for e in examples)  # fmt: skip
    found = run_logs(meta.get("checkpoint"))
    series = read_curves(found) if found else {}
    # the log's step is the 0-based index of the step in progress; the charts count steps trained, as the meta's step
    charts = "".join(svg_chart([(x + 1, y) for x, y in series[key]], label) for key, label in CURVES if key in series)
    body = (f"<h1>fgdm evaluation — {html.escape(str(meta.get('split', '')))} split, {report['sequences']} sequences"
            f"</h1><ul>{facts}</ul><h2>Scores</h2><table><tr><th>system</th>{head}</tr>{rows}</table>"
            f"<p>{html.escape(reading_note(report))}</p>" + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
            + (f"<h2>Generated and true</h2><div class='gifs'>{gifs}</div>" if gifs else "")
            + (f"<h2>Training</h2><p>From the run's CSV log{'s' if len(found) > 1 else ''} "
               f"({', '.join(html.escape(p.parent.name) for p in found)}).</p>{charts}"
               if charts else "")
            + f"<h2>Definitions</h2><dl>{defs}</dl>")  # fmt: skip
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child{text-align:left}"
             ".gifs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:.85em;max-width:420px}"
             ".chart{border:1px solid #ddd;margin:4px}.chart text{font-size:11px}dt{font-weight:bold}")  # fmt: skip
    path = Path(path)
    path.write_text(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fgdm evaluation</title>"
                    f"<style>{style}</style></head><body>{body}</body></html>\n", encoding="utf-8")  # fmt: skip
    return path
