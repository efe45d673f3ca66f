"""Pose files one sequence each: ``.pose`` (pose-format) and ``.npy``; and directories of another system's poses.

PT directories (``{split}.skels`` …) are read and written by :mod:`fgdm.data.pt`.

``.pose`` files carry the skeleton as three components, BODY (8 points) and the two hands (21
each), limbs from the skeleton's bones, confidence 1 and their frame rate (SPEC §2.2). Readers
refuse what is not a pose: wrong shapes, NaN, infinities and coordinates beyond ±1,000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fgdm.data.pt import MAX_ABS, DataFormatError, text_lines
from fgdm.skeleton import PT50, Skeleton

FPS = 25.0


def save_pose(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50, fps: float = FPS) -> Path:
    """Writes a (S, J, 3) PT sequence as a MediaPipe Holistic ``.pose`` (:mod:`fgdm.data.holistic`), which
    pose-format's tools read, draw upright and recognise (``detect_known_pose_format`` → holistic)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    from fgdm.data import holistic

    if skeleton is not PT50:
        raise ValueError("the .pose export maps the PT 50-joint skeleton onto Holistic's points")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: frame rate {fps} (frames per second > 0), which no reader would take")
    data, conf = holistic.to_holistic(_check(pose, skeleton, str(path)))
    size = holistic.CANVAS
    header = PoseHeader(0.2, PoseHeaderDimensions(size, size, size), holistic.components())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        Pose(header, NumPyPoseBody(fps=fps, data=data, confidence=conf)).write(f)
    return path


def read_pose(path: Path | str, skeleton: Skeleton = PT50) -> tuple[np.ndarray, float]:
    """A ``.pose`` file as (S, J, 3) float32 PT coordinates and its fps: MediaPipe Holistic files (exactly
    back when fgdm wrote them, else normalised as PT data: :mod:`fgdm.data.holistic`) or files whose points
    carry the PT joint names (fgdm 0.2 wrote those)."""
    return read_pose_report(path, skeleton)[:2]


def read_pose_report(path: Path | str, skeleton: Skeleton = PT50):
    """:func:`read_pose` plus how many joint values were interpolated and how many were absent throughout."""
    from pose_format import Pose

    from fgdm.data import holistic

    if skeleton is not PT50:
        raise ValueError("only the PT 50-joint skeleton is read from .pose files")
    path = Path(path)
    try:
        p = Pose.read(path.read_bytes())
        points = [f"{c.name}/{pt}" for c in p.header.components for pt in c.points]
        names = {name: i for i, name in enumerate(points)}
        data, fps = np.asarray(p.body.data.filled(0.0)), float(p.body.fps)
        conf = np.asarray(p.body.confidence)
        dims = p.header.dimensions
    except OSError:
        raise
    except Exception as err:  # pose-format raises whatever its parser meets in a damaged file
        raise DataFormatError(path, None, f"not a readable .pose file ({type(err).__name__}: {err})") from None
    if data.ndim != 4 or data.shape[1] < 1 or data.shape[3] < 3 or conf.shape != data.shape[:3]:
        flat = " (2D points: fgdm reads x, y and z)" if data.ndim == 4 and data.shape[3] == 2 else ""
        raise DataFormatError(path, None, f"pose data of shape {data.shape}, expected (frames, people, points, "
                              f"xyz){flat}")  # fmt: skip
    if not (np.isfinite(fps) and fps > 0):
        raise DataFormatError(path, None, f"frame rate {fps} fps")
    if len(data) == 0:
        raise DataFormatError(path, None, "no frames")
    seen = [i for i in range(data.shape[1]) if conf[:, i].any()]  # people with a point in some frame
    if len(seen) > 1:
        raise DataFormatError(path, None, f"{data.shape[1]} people, {len(seen)} of them seen: fgdm reads one signer "
                              "(keep that person's data and confidence: body.data[:, [i]])")  # fmt: skip
    person = seen[0] if seen else 0
    data, conf = data[:, person : person + 1], conf[:, person : person + 1]
    bad = ~np.isfinite(data[..., :3]).all(-1) & (conf > 0)  # a value masked out (no confidence) is never read
    if bad.any():
        f, _, n = np.argwhere(bad)[0]
        raise DataFormatError(path, None, f"frame {f + 1}, point {points[n]}: {data[f, 0, n, :3]} is not finite")
    if "POSE_LANDMARKS/LEFT_SHOULDER" in names:
        need = [f"POSE_LANDMARKS/{n}" for n in holistic.BODY_POINTS.values()] + [
            f"{side}_HAND_LANDMARKS/{n}" for side in ("LEFT", "RIGHT") for n in holistic.HAND21
        ]
        missing = [n for n in need if n not in names]
        if missing:
            raise DataFormatError(path, None, f"a Holistic file without {missing[:3]}")
        # fgdm's own files: its canvas, no confidence on the points PT lacks (eyes, hips, legs, a face) and the
        # shoulders where fgdm draws them; a square 1000-pixel video of MediaPipe's has those points too, and one of
        # fgdm's moved since (pose-format's normalize keeps the header) has the shoulders elsewhere: both are
        # normalised as any other
        unused = np.ones(conf.shape[2], dtype=bool)
        unused[[names[n] for n in need]] = False
        exact = (dims.width, dims.height, dims.depth) == (holistic.CANVAS,) * 3 and not conf[:, 0, unused].any()
        exact = exact and holistic.on_canvas(data[:, 0, :, :3], conf[:, 0], names)
        try:
            got = holistic.from_holistic(data[:, 0, :, :3], conf[:, 0], names, dims.width, dims.depth, fps, exact)
        except ValueError as err:
            raise DataFormatError(path, None, str(err)) from None
        return _check(got.pose, skeleton, str(path)), fps, got.interpolated, got.absent
    index = {name.split("/", 1)[1]: i for name, i in names.items()}
    missing = [n for n in skeleton.names if n not in index]
    if missing:
        raise DataFormatError(path, None, f"neither Holistic nor the PT 50-joint skeleton (lacks {missing[:5]})")
    pose = data[:, 0, [index[n] for n in skeleton.names], :3]  # the signer, xyz
    return _check(pose, skeleton, str(path)).astype(np.float32), fps, 0, 0


def load_pose(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    """Reads a ``.pose`` file into (S, J, 3) float32 PT coordinates (see :func:`read_pose`)."""
    return read_pose(path, skeleton)[0]


def save_npy(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50) -> Path:
    """Writes one (S, J, 3) sequence to exactly ``path`` (NumPy would add ``.npy`` to ``a.NPY``)."""
    path = Path(path)
    pose = _check(pose, skeleton, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.save(f, pose.astype(np.float32))
    return path


def load_npy(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    path = Path(path)
    try:
        pose = np.load(path, allow_pickle=False)
    except OSError:
        raise
    except Exception as err:  # a damaged or foreign file: NumPy raises ValueError, EOFError, …
        raise DataFormatError(path, None, f"not a readable .npy file ({type(err).__name__}: {err})") from None
    if not isinstance(pose, np.ndarray):
        raise DataFormatError(path, None, "an .npz archive, not one .npy array")
    return _check(pose, skeleton, str(path)).astype(np.float32)


def _check(pose: np.ndarray, skeleton: Skeleton, where: str = "pose") -> np.ndarray:
    pose = np.asarray(pose)
    if pose.ndim != 3 or pose.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"{where}: shape {pose.shape}, expected (S, {skeleton.num_joints}, 3)")
    if not np.issubdtype(pose.dtype, np.number) or np.iscomplexobj(pose):
        raise ValueError(f"{where}: values of type {pose.dtype}, expected real numbers")
    if not np.isfinite(pose).all():
        f, j, c = np.argwhere(~np.isfinite(pose))[0]
        raise ValueError(f"{where}: frame {f + 1}, joint {j} coordinate {'xyz'[c]} is {pose[f, j, c]} (not finite)")
    if len(pose) == 0:
        raise ValueError(f"{where}: no frames")
    if np.abs(pose).max() > MAX_ABS:
        raise ValueError(f"{where}: a coordinate of {np.abs(pose).max():g} is beyond ±{MAX_ABS:g}: not a pose")
    return pose


def save_sequence(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50, fps: float = FPS) -> Path:
    """Writes one (S, J, 3) sequence as ``.npy`` or ``.pose``, by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return save_npy(path, pose, skeleton)
    if suffix == ".pose":
        return save_pose(path, pose, skeleton, fps)
    raise ValueError(f"{path}: unsupported pose file {suffix!r} (use .npy or .pose)")


def write_frame_rate(directory: Path | str, split: str, fps: float) -> Path:
    """Records beside a split's PT files the frame rate they were sampled at (``{split}.fps``), which PT files
    cannot hold; :func:`load_hypotheses` reads it."""
    path = Path(directory) / f"{split}.fps"
    path.write_text(f"{fps}\n", encoding="utf-8")
    return path


def read_frame_rate(directory: Path | str, split: str, default: float = FPS) -> float:
    """The frame rate :func:`write_frame_rate` recorded beside a split's PT files, else ``default``."""
    path = Path(directory) / f"{split}.fps"
    if not path.is_file():
        return default
    text = " ".join(text_lines(path)).strip()  # a byte-order mark or CRLF, as every text file fgdm reads
    try:
        fps = float(text)
    except ValueError:
        fps = float("nan")
    if not (math.isfinite(fps) and fps > 0):
        raise DataFormatError(path, 1, f"not a frame rate (frames per second > 0): {text[:40]!r}")
    return fps


def playback_rate(rates: Sequence[tuple[str, float | None]], default: float = FPS) -> tuple[float, list[int]]:
    """The one frame rate at which sequences side by side play as recorded, and for each input the k of its
    every k-th frame kept to get there. ``rates``: (input, its rate or None where it has none, a ``.npy``, which
    goes at the others' or ``default``). The lowest rate is played; an input at k times it keeps every k-th
    frame, as a data split read at a lower rate does (a model's 12.5 fps output beside its 25 fps data). Rates
    that are not whole multiples of the lowest are an error: no one rate plays them all as recorded."""
    said = sorted({r for _, r in rates if r is not None})
    if not said:
        return default, [1] * len(rates)
    low, steps = said[0], []
    for _, rate in rates:
        k = 1.0 if rate is None else rate / low
        if abs(k - round(k)) > 1e-3:
            listed = ", ".join(f"{name} {r:g}" for name, r in rates if r is not None)
            raise ValueError(f"the inputs' frame rates differ ({listed} fps): give --fps to play them at one")
        steps.append(round(k))
    return low, steps


def load_hypotheses(
    path: Path | str,
    split: str,
    names: Sequence[str],
    fps: float,
    source_fps: float = FPS,
    allow_extra: bool = False,
    skeleton: Skeleton = PT50,
    lengths: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Another system's poses for the references ``names``, in their order, at the references' ``fps``.

    ``path`` is a PT directory holding ``{split}.skels`` (matched by ``{split}.files``) or a directory of
    ``.npy``/``.pose`` files, in folders or not (matched by path: ``test/seq-7.npy`` is ``test/seq-7``; where
    every reference lies in one folder, as PT's ``test/…``, files directly in ``path`` match too). Frame rates:
    a ``.pose`` file's own; else ``{split}.fps`` beside the files (``fgdm generate`` writes it); else
    ``source_fps``, the rate of the data's own files (25 for PT). A sequence at k times ``fps`` keeps every k-th
    frame, as the references did. Missing names are an error, and extra ones unless ``allow_extra`` (a
    ``--limit``-ed evaluation). ``lengths``, the references' frame counts, catch files whose rate was taken as
    ``source_fps`` but which are as long as the references: at their rate already (``save_sequence``'s ``.npy``
    of a model's output), which keeping every k-th frame would cut to 1/k. That is refused, asking for
    ``{split}.fps``.
    """
    from fgdm.data.pt import read_split

    path = Path(path)
    if not path.is_dir():
        raise DataFormatError(path, None, "hypothesis directory not found")
    given = read_frame_rate(path, split, source_fps)
    found: dict[str, tuple[np.ndarray, float]] = {}
    if (path / f"{split}.skels").is_file():
        data = read_split(path, split, num_joints=skeleton.num_joints)
        found = {name: (pose, given) for name, pose in zip(data.names, data.poses, strict=True)}  # names: unique
        unrated = set(found)
    else:
        unrated = set()  # files whose rate is not their own (.npy)
        for key, f in _hypothesis_files(path, split, names):
            if key in found:
                raise DataFormatError(f, None, f"a second file for the name {key!r}")
            if f.suffix.lower() == ".pose":
                found[key] = read_pose(f, skeleton)
            else:
                found[key] = load_npy(f, skeleton), given
                unrated.add(key)
    missing = [n for n in names if n not in found]
    extra = [] if allow_extra else sorted(set(found) - set(names), key=str)
    if missing or extra:
        raise DataFormatError(path, None, f"its names do not match the {split} split's: missing {missing[:5]} "
                              f"({len(missing)} in all), extra {extra[:5]} ({len(extra)} in all)")  # fmt: skip
    step = round(source_fps / fps) if source_fps >= fps else 1
    kept = [(len(found[n][0]), n_ref) for n, n_ref in zip(names, lengths or (), strict=False) if n in unrated]
    if not (path / f"{split}.fps").is_file() and step > 1 and kept:
        ratio = float(np.median([n / max(n_ref, 1) for n, n_ref in kept]))
        if 0.8 <= ratio <= 1.25:  # as long as the references before every k-th frame is kept: at their rate
            raise DataFormatError(path, None, f"its {split} files carry no frame rate, so they count as the data's "
                                  f"{source_fps:g} fps and would keep one frame in {step}; but they are as long as "
                                  f"the references at {fps:g} fps (median length ratio {ratio:.2f}): write their rate "
                                  f"into {path / f'{split}.fps'} ({fps:g} if they are at the references' rate, "
                                  f"{source_fps:g} if at the data's)")  # fmt: skip
    out = []
    for name in names:
        pose, rate = found[name]
        step = rate / fps
        if round(step) < 1 or abs(step - round(step)) > 1e-3:
            raise DataFormatError(path, None, f"{name}: at {rate:g} fps, which keeping every k-th frame cannot "
                                  f"bring to the references' {fps:g} fps")  # fmt: skip
        out.append(pose[:: round(step)])
    return out


def _hypothesis_files(path: Path, split: str, names: Sequence[str]) -> list[tuple[str, Path]]:
    """The .npy/.pose files below a hypothesis directory, each with the name it stands for: its path below
    ``path`` without the suffix (``test/seq-7.npy`` is ``test/seq-7``). Where every reference name lies in one
    folder (PT's ``test/…``) and every file directly in ``path``, a file stands for the name in that folder."""
    files = sorted(f for f in path.rglob("*") if f.suffix.lower() in (".npy", ".pose") and f.is_file())
    if not files:
        raise DataFormatError(path, None, f"no {split}.skels and no .npy/.pose files to score")
    keys = [f.relative_to(path).with_suffix("").as_posix() for f in files]
    folders = {n.rpartition("/")[0] for n in names}
    if len(folders) == 1 and "" not in folders and all("/" not in k for k in keys):
        (folder,) = folders
        keys = [f"{folder}/{k}" for k in keys]
    return list(zip(keys, files, strict=True))


def load_any(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    """Reads a single sequence from ``.npy`` or ``.pose`` by extension."""
    return load_any_with_rate(path, skeleton)[0]


def load_any_with_rate(path: Path | str, skeleton: Skeleton = PT50) -> tuple[np.ndarray, float | None]:
    """:func:`load_any` and the sequence's frame rate: a ``.pose`` file's own, None for ``.npy`` (it has none)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return load_npy(path, skeleton), None
    if suffix == ".pose":
        return read_pose(path, skeleton)
    raise ValueError(f"{path}: unsupported pose file {suffix!r} (use .npy or .pose)")
