"""Pose files one sequence each: ``.pose`` (pose-format) and ``.npy``; frame rates beside PT files and for playback.

PT directories (``{split}.skels`` …) are read and written by :mod:`fgdm.data.pt`, another system's poses for
``fgdm evaluate --hyp`` by :mod:`fgdm.data.hypotheses`.

``.pose`` files are written in MediaPipe Holistic's layout (:mod:`fgdm.data.holistic`): the body's 33 points (those
the PT skeleton has with confidence 1, the rest 0) and the two hands' 21, Holistic's limbs, at the poses' frame rate
(docs/model.md §2.2). Readers refuse what is not a pose: wrong shapes, NaN, infinities and coordinates beyond ±1,000.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Sequence
from numbers import Real
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fgdm.data.pt import MAX_ABS, DataFormatError, coordinate_name, text_lines
from fgdm.runtime import replacing
from fgdm.skeleton import CONVENTION, PT50, Skeleton

FPS = 25.0
RECORDED_FPS = (1.0, 1000.0)  # the frame rates a .pose file is read at: a recording's, not a header's slip


def save_pose(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50, fps: float = FPS) -> Path:
    """Writes a (S, J, 3) PT sequence as a MediaPipe Holistic ``.pose`` (:mod:`fgdm.data.holistic`), which
    pose-format's tools read, draw upright and recognise (``detect_known_pose_format`` → holistic)."""
    return _written(path, lambda f: _write_pose(f, pose, skeleton, str(path), fps))


def _write_pose(f: BinaryIO, pose: np.ndarray, skeleton: Skeleton, where: str, fps: float) -> None:
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    from fgdm.data import holistic

    if skeleton is not PT50:
        raise ValueError("the .pose export maps the PT 50-joint skeleton onto Holistic's points")
    low, high = RECORDED_FPS  # as read: a file fgdm writes, fgdm reads
    if not (math.isfinite(fps) and low <= fps <= high):
        raise ValueError(f"{where}: frame rate {fps:g}; a .pose file is read at {low:g} to {high:g} frames per second")
    data, conf = holistic.to_holistic(_check(pose, skeleton, where))
    size = holistic.CANVAS
    header = PoseHeader(0.2, PoseHeaderDimensions(size, size, size), holistic.components())
    Pose(header, NumPyPoseBody(fps=fps, data=data, confidence=conf)).write(f)


def read_pose(path: Path | str, skeleton: Skeleton = PT50) -> tuple[np.ndarray, float]:
    """A ``.pose`` file as (S, J, 3) float32 PT coordinates and its fps: MediaPipe Holistic files (exactly
    back when fgdm wrote them, else normalised as PT data: :mod:`fgdm.data.holistic`) or files whose points
    carry the PT joint names (fgdm 0.2 wrote those)."""
    return read_pose_report(path, skeleton)[:2]


def read_pose_report(path: Path | str, skeleton: Skeleton = PT50) -> tuple[np.ndarray, float, int, int]:
    """:func:`read_pose` plus how many joint values were interpolated and how many were absent throughout."""
    got = read_pose_details(path, skeleton)
    return got.pose, got.fps, got.interpolated, got.absent


def read_pose_details(path: Path | str, skeleton: Skeleton = PT50):
    """:func:`read_pose` as a :class:`fgdm.data.holistic.Imported`: the pose, its fps, how many joint values were
    interpolated and how many absent throughout, and whether it was normalised as PT data (a Holistic file not on
    fgdm's canvas) rather than read back as written."""
    from pose_format import Pose

    from fgdm.data import holistic

    if skeleton is not PT50:
        raise ValueError("only the PT 50-joint skeleton is read from .pose files")
    path = Path(path)
    try:
        if not (raw := path.read_bytes()):
            raise DataFormatError(path, None, "an empty file (0 bytes), not a .pose file")
        p = Pose.read(raw)
        points = [f"{c.name}/{pt}" for c in p.header.components for pt in c.points]
        names = {name: i for i, name in enumerate(points)}
        data, fps = np.asarray(p.body.data.filled(0.0)), float(p.body.fps)
        conf = np.asarray(p.body.confidence)
        dims = p.header.dimensions
    except (OSError, DataFormatError):
        raise
    except Exception as err:  # pose-format raises whatever its parser meets in a damaged file
        raise DataFormatError(path, None, f"not a readable .pose file ({type(err).__name__}: {err})") from None
    if data.ndim != 4 or data.shape[1] < 1 or data.shape[3] < 3 or conf.shape != data.shape[:3]:
        flat = " (2D points: fgdm reads x, y and z)" if data.ndim == 4 and data.shape[3] == 2 else ""
        raise DataFormatError(path, None, f"pose data of shape {data.shape}, expected (frames, people, points, "
                              f"xyz){flat}")  # fmt: skip
    low, high = RECORDED_FPS  # (brought to PT's 25 fps, 1e-5 fps would be 2.5 million frames a frame)
    if not (np.isfinite(fps) and low <= fps <= high):
        raise DataFormatError(path, None, f"frame rate {fps:g} fps, not a recording's ({low:g} to {high:g}; set the "
                              "right one with pose-format: pose.body.fps = 25)")  # fmt: skip
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
        _refuse_far(path, got.pose, data[:, 0], conf[:, 0], names, got.normalised)
        got.pose = _check(got.pose, skeleton, str(path))
        return got
    index = {name.split("/", 1)[1]: i for name, i in names.items()}
    missing = [n for n in skeleton.names if n not in index]
    if missing:
        raise DataFormatError(path, None, f"neither Holistic nor the PT 50-joint skeleton (lacks {missing[:5]})")
    pose = data[:, 0, [index[n] for n in skeleton.names], :3]  # the signer, xyz
    return holistic.Imported(_check(pose, skeleton, str(path)).astype(np.float32), fps, 0, 0)


def _refuse_far(path: Path, pose: np.ndarray, data: np.ndarray, conf: np.ndarray, names: dict[str, int],
                normalised: bool) -> None:  # fmt: skip
    """Refuses a Holistic file whose PT pose has a coordinate beyond ±:data:`MAX_ABS`, naming the frame and the
    point with its value as read (pixels), where it was seen there, rather than the value in PT units alone."""
    from fgdm.data import holistic

    far = np.abs(pose) > MAX_ABS
    far[:, 1] = False  # the neck, the shoulders' midpoint: one of them is at least as far
    if not far.any():
        return
    at = np.argwhere(far)
    seen = [(f, j, c) for f, j, c in at if conf[f, names[holistic.POINTS[j]]] > 0]
    f, j, c = (seen or at)[0]  # a point seen so, where one is: an interpolated one is only between such
    key = holistic.POINTS[j]
    read = ", ".join(f"{v:g}" for v in data[f, names[key], :3])
    how = f"({read}) as read" if seen else "not seen in that frame (filled in)"
    normal = " once normalised as PT data" if normalised else ""
    raise DataFormatError(path, None, f"frame {f + 1}, point {key}: {how}, {'xyz'[c]} = {pose[f, j, c]:g} PT units"
                          f"{normal}, beyond ±{MAX_ABS:g}: not a pose")  # fmt: skip


def load_pose(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    """Reads a ``.pose`` file into (S, J, 3) float32 PT coordinates (see :func:`read_pose`)."""
    return read_pose(path, skeleton)[0]


def save_npy(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50) -> Path:
    """Writes one (S, J, 3) sequence to exactly ``path`` (NumPy would add ``.npy`` to ``a.NPY``)."""
    return _written(path, lambda f: _write_npy(f, pose, skeleton, str(path)))


def _write_npy(f: BinaryIO, pose: np.ndarray, skeleton: Skeleton, where: str) -> None:
    np.save(f, _check(pose, skeleton, where).astype(np.float32))


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


def _at(f: int, j: int, c: int, skeleton: Skeleton) -> str:
    """'frame 3 (index 2), joint 7 (left_wrist, 0-based) coordinate y' for pose[2, 7, 1]: frames count from 1
    in messages, as in the PT files' (their index beside, for an array's reader)."""
    return f"frame {f + 1} (index {f}), {coordinate_name(3 * j + c, skeleton.num_joints)}"


def _check(pose: np.ndarray, skeleton: Skeleton, where: str = "pose") -> np.ndarray:
    pose = np.asarray(pose)
    if pose.ndim != 3 or pose.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"{where}: shape {pose.shape}, expected (S, {skeleton.num_joints}, 3)")
    if not np.issubdtype(pose.dtype, np.number) or np.iscomplexobj(pose):
        raise ValueError(f"{where}: values of type {pose.dtype}, expected real numbers")
    if not np.isfinite(pose).all():
        f, j, c = np.argwhere(~np.isfinite(pose))[0]
        raise ValueError(f"{where}: {_at(f, j, c, skeleton)} is {pose[f, j, c]} (not finite)")
    if len(pose) == 0:
        raise ValueError(f"{where}: no frames")
    if np.abs(pose).max() > MAX_ABS:
        f, j, c = np.argwhere(np.abs(pose) > MAX_ABS)[0]
        raise ValueError(f"{where}: {_at(f, j, c, skeleton)} is {pose[f, j, c]:g}: beyond ±{MAX_ABS:g}, not in the "
                         f"PT convention ({CONVENTION}; pixel coordinates?)")  # fmt: skip
    return pose


def save_sequence(
    target: Path | str | BinaryIO,
    pose: np.ndarray,
    skeleton: Skeleton = PT50,
    fps: float = FPS,
    kind: str | None = None,
) -> Path | BinaryIO:
    """Writes one (S, J, 3) sequence as ``.npy`` or ``.pose``. ``target``: a path, whose extension gives the format
    (replaced whole: :func:`fgdm.runtime.replacing`), or a file object opened for bytes, such as an ``io.BytesIO``
    (a service's response), with ``kind`` ``"npy"`` or ``"pose"`` (the file complete or, on a refusal, nothing
    written to it); returns the path or the file object. ``fps``: the poses' frame rate, which a ``.pose`` file
    records (a ``.npy`` holds none): 25 for PT data, ``loaded.fps`` for a model's poses (12.5 for the shipped model:
    at the default, pose-format's tools would play them twice as fast)."""
    if hasattr(target, "write"):
        if kind not in ("npy", "pose"):
            raise ValueError(f"a file object: kind 'npy' or 'pose' says what to write, got {kind!r}")
        if isinstance(target, io.TextIOBase):
            raise ValueError("a file object for text: open it for bytes ('wb')")
        _check_fps(fps, where := "file object")
        if kind == "npy":
            content = _content(lambda f: _write_npy(f, pose, skeleton, where))
        else:
            content = _content(lambda f: _write_pose(f, pose, skeleton, where, fps))
        target.write(content)  # one write, once complete
        return target
    _check_fps(fps, target)
    suffix = Path(target).suffix.lower()
    if suffix not in (".npy", ".pose"):
        raise ValueError(f"{target}: unsupported pose file {suffix!r} (use .npy or .pose)")
    if kind is not None and f".{kind}" != suffix:
        raise ValueError(f"{target}: kind {kind!r} for a {suffix} file (a path's extension says what to write)")
    return save_npy(target, pose, skeleton) if suffix == ".npy" else save_pose(target, pose, skeleton, fps)


def _content(write: Callable[[BinaryIO], None]) -> bytes:
    """What ``write`` writes to a file, in memory: a refusal (a bad pose) comes before any file is touched. A copy,
    not a view of the buffer: a view alive when the buffer was collected (both in a cycle, as a caught error's
    frames make one) had its closing fail, "Exception ignored ... BufferError" on stderr under Python 3.13."""
    content = io.BytesIO()
    write(content)
    return content.getvalue()


def _written(path: Path | str, write: Callable[[BinaryIO], None]) -> Path:
    """``path`` replaced whole by what ``write`` writes (:func:`fgdm.runtime.replacing`)."""
    content = _content(write)
    with replacing(path) as tmp:
        tmp.write_bytes(content)
    return Path(path)


def _check_fps(fps: object, where: object) -> None:
    if not isinstance(fps, Real) or isinstance(fps, bool):
        raise ValueError(f"{where}: fps: a number of frames per second, got {fps!r}")


def write_frame_rate(directory: Path | str, split: str, fps: float) -> Path:
    """Records beside a split's PT files the frame rate they were sampled at (``{split}.fps``), which PT files
    cannot hold; :func:`fgdm.data.hypotheses.read_hypotheses` reads it."""
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


def playback_rate(
    rates: Sequence[tuple[str, float | None]], default: float = FPS, played: float | None = None
) -> tuple[float, list[int]]:
    """The one frame rate at which sequences side by side play as recorded, and for each input the k of its
    every k-th frame kept to get there. ``rates``: (input, its rate, or None where it has none: a ``.npy``, which
    counts as ``default``, PT's 25 fps, as ``fgdm evaluate`` counts it; a warning says so where it is played
    beside inputs of another rate). The lowest rate is played; an input at k times it keeps every k-th frame, as
    a data split read at a lower rate does (a model's 12.5 fps output beside its 25 fps data). Rates that are not
    whole multiples of the lowest are an error: no one rate plays them all as recorded. ``played`` (``fgdm render
    --fps``): every input's frames at that rate instead, with a warning where their own rates differ."""
    if played:
        if len(known := sorted({rate for _, rate in rates if rate})) > 1:
            warnings.warn(f"--fps {played:g} plays every input's frames at that rate, so inputs recorded at "
                          f"{' and '.join(f'{r:g}' for r in known)} fps run at different speeds; without --fps "
                          "they play in step", stacklevel=2)  # fmt: skip
        return played, [1] * len(rates)
    said = [(name, default if rate is None else rate) for name, rate in rates]
    low = min(rate for _, rate in said) if said else default
    steps = []
    for _, rate in said:
        k = rate / low
        if abs(k - round(k)) > 1e-3:
            listed = ", ".join(f"{name} {r:g}" + (" (no rate of its own)" if given is None else "")
                               for (name, r), (_, given) in zip(said, rates, strict=True))  # fmt: skip
            raise ValueError(f"the inputs' frame rates differ ({listed} fps): give --fps to play them at one")
        steps.append(round(k))
    unrated = [name for name, rate in rates if rate is None]
    others = sorted({rate for _, rate in rates if rate is not None and abs(rate - default) > 1e-6 * default})
    if unrated and others:
        warnings.warn(f"{', '.join(unrated)}: a .npy holds no frame rate, taken as {default:g} fps beside "
                      f"inputs at {', '.join(f'{r:g}' for r in others)} fps; if it is at another rate, give --fps "
                      "to play every input's frames at that one", stacklevel=2)  # fmt: skip
    return low, steps


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
    split = (
        f"; a PT split's sequences are read from their directory ({Path(path).parent})" if suffix == ".skels" else ""
    )
    raise ValueError(f"{path}: unsupported pose file {suffix!r} (use .npy or .pose{split})")
