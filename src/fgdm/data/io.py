"""Pose files one sequence each: ``.pose`` (pose-format) and ``.npy``; and directories of another system's poses.

PT directories (``{split}.skels`` …) are read and written by :mod:`fgdm.data.pt`.

``.pose`` files carry the skeleton as three components, BODY (8 points) and the two hands (21
each), limbs from the skeleton's bones, confidence 1 and 25 fps (SPEC §2.2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fgdm.skeleton import PT50, Skeleton

FPS = 25.0
_COMPONENT_NAMES = {"body": "BODY", "left_hand": "LEFT_HAND", "right_hand": "RIGHT_HAND"}


def _header(skeleton: Skeleton):
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    components = []
    for part, joints in skeleton.parts:
        local = {j: i for i, j in enumerate(joints)}
        limbs = [(local[p], local[c]) for c, p in skeleton.bones if c in local and p in local]
        components.append(
            PoseHeaderComponent(
                name=_COMPONENT_NAMES.get(part, part.upper()),
                points=[skeleton.names[j] for j in joints],
                limbs=limbs,
                colors=[(255, 255, 255)] * len(limbs),
                point_format="XYZC",
            )
        )
    # Dimensions are in pixels in pose-format; PT units fit a 1000-unit canvas.
    return PoseHeader(
        version=0.2,
        dimensions=PoseHeaderDimensions(width=1000, height=1000, depth=1000),
        components=components,
    )


def save_pose(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50, fps: float = FPS) -> Path:
    """Writes a (S, J, 3) sequence as a ``.pose`` file."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody

    pose = _check(pose, skeleton)
    order = [j for _, joints in skeleton.parts for j in joints]
    data = pose[:, None, order, :].astype(np.float32)  # (S, people=1, J, 3)
    body = NumPyPoseBody(fps=fps, data=data, confidence=np.ones(data.shape[:3], dtype=np.float32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        Pose(_header(skeleton), body).write(f)
    return path


def load_pose(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    """Reads a ``.pose`` file written by :func:`save_pose` back into (S, J, 3) float32."""
    from pose_format import Pose

    path = Path(path)
    p = Pose.read(path.read_bytes())
    names = [pt for c in p.header.components for pt in c.points]
    missing = [n for n in skeleton.names if n not in names]
    if missing:
        raise ValueError(f"{path}: the .pose file lacks points {missing[:5]} of the PT 50-joint skeleton")
    data = np.asarray(p.body.data.filled(0.0))[:, 0, :, :3]  # first person, xyz
    index = [names.index(n) for n in skeleton.names]
    return data[:, index].astype(np.float32)


def save_npy(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, _check(pose, skeleton).astype(np.float32))
    return path


def load_npy(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    path = Path(path)
    return _check(np.load(path), skeleton, str(path)).astype(np.float32)


def _check(pose: np.ndarray, skeleton: Skeleton, where: str = "pose") -> np.ndarray:
    pose = np.asarray(pose)
    if pose.ndim != 3 or pose.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"{where}: shape {pose.shape}, expected (S, {skeleton.num_joints}, 3)")
    if not np.isfinite(pose).all():
        raise ValueError(f"{where}: contains NaN or infinite values")
    return pose


def save_sequence(path: Path | str, pose: np.ndarray, skeleton: Skeleton = PT50, fps: float = FPS) -> Path:
    """Writes one (S, J, 3) sequence as ``.npy`` or ``.pose``, by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return save_npy(path, pose, skeleton)
    if suffix == ".pose":
        return save_pose(path, pose, skeleton, fps)
    raise ValueError(f"{path}: unsupported pose file {suffix!r} (use .npy or .pose)")


def _natural_key(path: Path) -> tuple:
    """File stems with their numbers compared as numbers: ``2`` before ``10``."""
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem))


def load_hypotheses(path: Path | str, split: str, count: int, skeleton: Skeleton = PT50) -> list[np.ndarray]:
    """Another system's poses for ``split``: a PT directory holding ``{split}.skels``, or a directory of
    ``.npy``/``.pose`` files taken in natural name order; there must be ``count`` sequences."""
    from fgdm.data.pt import DataFormatError, parse_skels_line

    path = Path(path)
    if not path.is_dir():
        raise DataFormatError(path, None, "hypothesis directory not found")
    skels = path / f"{split}.skels"
    if skels.is_file():
        lines = skels.read_text(encoding="utf-8").splitlines()
        poses = [parse_skels_line(line, skels, i, skeleton.num_joints) for i, line in enumerate(lines, start=1)]
    else:
        files = sorted([*path.glob("*.npy"), *path.glob("*.pose")], key=_natural_key)
        if not files:
            raise DataFormatError(path, None, f"no {split}.skels and no .npy/.pose files to score")
        poses = [load_any(f, skeleton) for f in files]
    if len(poses) != count:
        raise DataFormatError(path, None, f"{len(poses)} sequences, but the {split} split has {count}")
    return poses


def load_any(path: Path | str, skeleton: Skeleton = PT50) -> np.ndarray:
    """Reads a single sequence from ``.npy`` or ``.pose`` by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return load_npy(path, skeleton)
    if suffix == ".pose":
        return load_pose(path, skeleton)
    raise ValueError(f"{path}: unsupported pose file {suffix!r} (use .npy or .pose)")
