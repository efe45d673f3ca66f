"""MediaPipe Holistic ``.pose`` files (pose-format's conventions) to and from the PT 50-joint skeleton.

The field exchanges poses as pose-format files, usually MediaPipe Holistic from ``video_to_pose``:
components ``POSE_LANDMARKS`` (33 points), ``LEFT_HAND_LANDMARKS`` and ``RIGHT_HAND_LANDMARKS`` (21
each; left and right are the signer's), coordinates in image pixels (x right, y down) on a canvas of
the header's width × height, z MediaPipe's depth (toward the camera is smaller), a confidence per point.

Mapping, PT joint ← Holistic point:

    head                    POSE_LANDMARKS NOSE
    neck                    midpoint of POSE_LANDMARKS LEFT_SHOULDER and RIGHT_SHOULDER (implicit in a .pose)
    right_shoulder … wrist  POSE_LANDMARKS RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST (the signer's right)
    left_shoulder … wrist   POSE_LANDMARKS LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST
    left_hand_root, left_thumb_1 … 4, left_index_1 … 4, …, left_pinky_1 … 4
                            LEFT_HAND_LANDMARKS WRIST, THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP,
                            INDEX_FINGER_MCP … TIP, MIDDLE_FINGER_…, RING_FINGER_…, PINKY_… (in order)
    right_hand_*            RIGHT_HAND_LANDMARKS, the same 21 points

PT coordinates put the neck at the origin with the shoulders 0.334 apart, +x toward the signer's right
(image x mirrored), +y down, +z toward the camera. fgdm writes a .pose on a 1000 × 1000 × 1000 pixel
canvas (the depth says z is in pixels too), the neck at (500, 350), 600 pixels per PT unit: such a file
reads back exactly while its shoulders are about there (:func:`on_canvas`; pose-format's ``normalize``
moves the points and keeps the header). Any other Holistic file (a video's, or one of fgdm's moved so) is
normalised as PT data is: neck at the origin, the median shoulder width scaled to 0.334, hands placed in
depth at their body wrists (interpolated first where missed); a point missing in some frames (confidence 0)
is interpolated between the frames that have it, one missing in every frame is put at its anchor (a hand at
its body wrist, the head above the neck), and both are counted. Such a file is read back as ``normalised``
(:class:`Imported`), which ``fgdm evaluate`` reports of other systems' files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fgdm.skeleton import PT50, SHOULDER_WIDTH

BODY33 = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE", "RIGHT_EYE_OUTER",
    "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW",
    "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX",
    "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE",
    "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)  # fmt: skip
HAND21 = ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", *(
    f"{finger}_{joint}" for finger in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")
    for joint in ("MCP", "PIP", "DIP", "TIP")
))  # fmt: skip
HAND_LIMBS = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]  # fmt: skip
BODY_LIMBS = [(11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (0, 11), (0, 12)]
# PT body joints 0, 2 … 7 in POSE_LANDMARKS (the neck, joint 1, is the shoulders' midpoint)
BODY_POINTS = {0: "NOSE", 2: "RIGHT_SHOULDER", 3: "RIGHT_ELBOW", 4: "RIGHT_WRIST", 5: "LEFT_SHOULDER",
               6: "LEFT_ELBOW", 7: "LEFT_WRIST"}  # fmt: skip
WRIST = {"right": 4, "left": 7}  # the PT body joint each hand hangs from
CANVAS = 1000  # pixels, width = height = depth of the files fgdm writes
SCALE = 600.0  # pixels per PT unit
NECK = np.array([500.0, 350.0, 0.0])  # where the neck is drawn


def _mirror() -> np.ndarray:
    return np.array([-1.0, 1.0, -1.0])  # PT axes against image axes: x and z turned (a rotation about y)


def pt_to_pixels(pose: np.ndarray) -> np.ndarray:
    """(S, 50, 3) PT coordinates → pixels on fgdm's canvas (x right, y down, z in pixels, larger = further)."""
    return NECK + SCALE * pose * _mirror()


def pixels_to_pt(pixels: np.ndarray) -> np.ndarray:
    """The exact inverse of :func:`pt_to_pixels`."""
    return (pixels - NECK) / SCALE * _mirror()


def on_canvas(data: np.ndarray, conf: np.ndarray, names: dict[str, int]) -> bool:
    """Whether Holistic (S, N, 3) pixel data with confidence (S, N) has its shoulders where fgdm draws a pose:
    over the frames that show both, the median of their midpoint within 0.5 PT units (300 pixels) of the
    canvas's neck in x and y, and the median of their distance within a factor of 4 of PT's 0.334 (a model's
    early output may be far from both; pose-format's normalized data, its midpoint at 0 and its width 1, is
    not). Shoulders that coincide (median distance 0) count as on the canvas: no one normalised those (that
    divides by their distance), and normalising cannot place them either."""
    right, left = (names[f"POSE_LANDMARKS/{side}_SHOULDER"] for side in ("RIGHT", "LEFT"))
    seen = (conf[:, right] > 0) & (conf[:, left] > 0)
    if not seen.any():
        return False
    r, l = data[seen, right, :2].astype(np.float64), data[seen, left, :2].astype(np.float64)
    offset = np.median(np.linalg.norm((r + l) / 2 - NECK[:2], axis=-1)) / SCALE
    width = np.median(np.linalg.norm(r - l, axis=-1)) / SCALE / SHOULDER_WIDTH
    return bool(width == 0 or (offset <= 0.5 and 0.25 <= width <= 4.0))


# Holistic's five components in video_to_pose's order, as pose-format's tools ask for them by name: the face
# (MediaPipe's 468-point mesh, its points named by index) and the body in world coordinates are written empty
# (confidence 0): fgdm has no face, and its poses are on the canvas only
FACE468 = tuple(str(i) for i in range(468))
LAYOUT = (("POSE_LANDMARKS", BODY33), ("FACE_LANDMARKS", FACE468), ("LEFT_HAND_LANDMARKS", HAND21),
          ("RIGHT_HAND_LANDMARKS", HAND21), ("POSE_WORLD_LANDMARKS", BODY33))  # fmt: skip


def start(component: str) -> int:
    """The index of ``component``'s first point in the files fgdm writes (:data:`LAYOUT`)."""
    names = [name for name, _ in LAYOUT]
    return sum(len(points) for _, points in LAYOUT[: names.index(component)])


def components():
    """:data:`LAYOUT` as pose-format header components."""
    from pose_format.pose_header import PoseHeaderComponent

    limbs = {"POSE_LANDMARKS": BODY_LIMBS, "POSE_WORLD_LANDMARKS": BODY_LIMBS, "FACE_LANDMARKS": []}
    grey = {"POSE_LANDMARKS": (160, 160, 160), "POSE_WORLD_LANDMARKS": (160, 160, 160), "FACE_LANDMARKS": (200,) * 3}
    return [PoseHeaderComponent(name, list(points), limbs.get(name, HAND_LIMBS), [grey.get(name, (220, 90, 60))],
                                "XYZC") for name, points in LAYOUT]  # fmt: skip


def to_holistic(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, 50, 3) PT → Holistic data (S, 1, 576, 3) in pixels and confidence (S, 1, 576) (:data:`LAYOUT`): 1 on the
    points PT has (nose, shoulders, elbows, wrists, hands), 0 on the rest (eyes, hips, legs, face, world)."""
    S, total = len(pose), sum(len(points) for _, points in LAYOUT)
    px = pt_to_pixels(pose.astype(np.float64))
    data = np.zeros((S, total, 3))
    conf = np.zeros((S, total))
    for joint, name in BODY_POINTS.items():
        data[:, BODY33.index(name)] = px[:, joint]
        conf[:, BODY33.index(name)] = 1.0
    for side in ("left", "right"):
        at = start(f"{side.upper()}_HAND_LANDMARKS")
        data[:, at : at + 21], conf[:, at : at + 21] = px[:, PT50.part(f"{side}_hand")], 1.0
    return data[:, None].astype(np.float32), conf[:, None].astype(np.float32)


# Each PT joint but the neck (the shoulders' midpoint) ← its Holistic point, "COMPONENT/POINT"
POINTS = {**{joint: f"POSE_LANDMARKS/{name}" for joint, name in BODY_POINTS.items()}, **{
    joint: f"{side.upper()}_HAND_LANDMARKS/{name}" for side in ("left", "right")
    for joint, name in zip(PT50.part(f"{side}_hand"), HAND21, strict=True)
}}  # fmt: skip


@dataclass
class Imported:
    """A Holistic sequence in PT coordinates, with how much of it was filled in."""

    pose: np.ndarray  # (S, 50, 3) float32
    fps: float
    interpolated: int  # joint values filled between frames that had them
    absent: int  # joint values of joints missing in every frame, put at their anchor
    normalised: bool = False  # moved and scaled as PT data (not read back exactly from fgdm's canvas)
    unseen: tuple[str, ...] = ()  # what was missing in every frame ("left hand", "head", "right elbow")


def _fill(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, int]:
    """Linear interpolation over time of a (S, C) track where ``present`` (S,) is False; (track, filled count)."""
    if present.all() or not present.any():
        return values, 0
    t = np.arange(len(values))
    out = values.copy()
    for c in range(values.shape[1]):
        out[:, c] = np.interp(t, t[present], values[present, c])
    return out, int((~present).sum())


def from_holistic(data: np.ndarray, conf: np.ndarray, names: dict[str, int], width: int, depth: int,
                  fps: float, exact: bool) -> Imported:  # fmt: skip
    """Holistic (S, N, 3) pixel data of the first person, its confidence (S, N) and ``names`` ("COMPONENT/POINT"
    → index) → PT. ``exact``: a file on fgdm's canvas, read back without normalising.

    The body first, whole (its points missing in some frames interpolated, those missing throughout at their
    anchors), then the hands, which hang from its wrists: MediaPipe gives a hand's depth relative to the hand's
    own wrist, so each is placed in depth at its body wrist, interpolated where the body wrist was not seen."""
    S = len(data)
    px = np.zeros((S, PT50.num_joints, 3))
    ok = np.zeros((S, PT50.num_joints), dtype=bool)
    for joint, key in POINTS.items():
        px[:, joint], ok[:, joint] = data[:, names[key]], conf[:, names[key]] > 0
    mediapipe = not exact and depth == 0  # MediaPipe's z: unscaled, and relative to the hand's own wrist for hands
    if mediapipe:
        px[..., 2] *= width
    interpolated = absent = 0

    def fill(joints) -> None:
        nonlocal interpolated
        for joint in joints:
            px[:, joint], n = _fill(px[:, joint], ok[:, joint])
            interpolated += n

    fill(BODY_POINTS)
    rs, ls = 2, 5
    if not (ok[:, rs].any() and ok[:, ls].any()):
        raise ValueError("no frame shows both shoulders: the sequence cannot be placed (neck) or scaled")
    px[:, 1] = (px[:, rs] + px[:, ls]) / 2  # the neck
    span = _span(px) if not exact or not ok[:, 0].any() else 0.0  # to scale, or to place a head never seen
    unseen = []
    for joint in BODY_POINTS:  # never seen: above the neck
        if not ok[:, joint].any():
            px[:, joint] = px[:, 1] - [0.0, 0.5 * span, 0.0]
            absent += S
            unseen.append(PT50.names[joint].replace("_", " "))
    for side in ("left", "right"):
        hand = PT50.part(f"{side}_hand")
        if mediapipe:  # the hand's own wrist (its depth 0 by MediaPipe's convention where never seen) at the arm's
            root = _fill(px[:, hand.start, 2:], ok[:, hand.start])[0][:, 0]
            px[:, hand, 2] += (px[:, WRIST[side], 2] - root)[:, None]
        fill(hand)
        if not ok[:, hand].any():
            unseen.append(f"{side} hand")
        for joint in hand:  # never seen: at the body wrist
            if not ok[:, joint].any():
                px[:, joint] = px[:, WRIST[side]]
                absent += S
    if exact:
        pose = pixels_to_pt(px)
    else:
        scale = SHOULDER_WIDTH / span
        pose = (px - px[:, 1:2]) * scale * _mirror()
    return Imported(pose.astype(np.float32), fps, interpolated, absent, normalised=not exact, unseen=tuple(unseen))


def _span(px: np.ndarray) -> float:
    """The median shoulder width in pixels (x and y only: MediaPipe's depth is too noisy to scale by)."""
    width = float(np.median(np.linalg.norm(px[:, 2, :2] - px[:, 5, :2], axis=-1)))
    if not width > 0:
        raise ValueError("the shoulders coincide: the sequence cannot be scaled")
    return width


def resample(pose: np.ndarray, fps: float, target: float) -> np.ndarray:
    """A (S, J, 3) sequence at ``fps`` brought to ``target`` fps by linear interpolation over time; the same
    duration ((S - 1) / fps seconds, to the nearest frame), its first frame kept. Unchanged at the same rate."""
    if abs(fps - target) < 1e-6 * target or len(pose) < 2:
        return pose
    count = max(1, round((len(pose) - 1) * target / fps) + 1)
    at = np.minimum(np.arange(count) * (fps / target), len(pose) - 1)  # each new frame's place on the old frames
    i = np.minimum(at.astype(int), len(pose) - 2)
    w = (at - i)[:, None, None]
    return ((1 - w) * pose[i] + w * pose[i + 1]).astype(pose.dtype)
