"""Animates a gloss sequence into a PT-layout skeleton sequence (S, J, 3).

Bones keep their length in every frame: arms are solved by analytic two-bone inverse kinematics
from wrist targets, hands by forward kinematics of a 21-joint hand model in a hand frame
(finger direction u, palm normal n, thumb side t). Signs are joined by smooth co-articulation
transitions (smoothstep position and handshape blends, normalised quaternion interpolation of the
hand orientation), with the rest pose at both ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from fgdm.data.synth.lexicon import (
    LOCATIONS,
    ORIENTATIONS,
    REST_HANDSHAPE,
    Handedness,
    Lexicon,
    Movement,
    Sign,
)
from fgdm.skeleton import PT50, Skeleton

# Hand geometry in metres-like PT units (shoulder width 0.334), measured against real DGS hands.
_HAND_ROOT = 0.022  # wrist → hand root, along the finger direction
_PALM = np.array([0.074, 0.071, 0.067, 0.063])  # hand root → knuckle, index..pinky, along u
_ACROSS = np.array([0.024, 0.006, -0.011, -0.026])  # knuckle offsets towards the thumb side
_PHALANGES = np.array([[0.040, 0.023, 0.018], [0.044, 0.026, 0.019], [0.041, 0.024, 0.018], [0.033, 0.018, 0.015]])
_THUMB = np.array([0.040, 0.037, 0.030, 0.024])  # root → CMC, then the three thumb bones
_MAX_FLEX = np.array([np.pi / 2, np.radians(100), np.radians(70)])  # MCP, PIP, DIP

_REST_WRIST = np.array([0.14, 0.46, 0.12])
_LOW_WRIST = np.array([0.11, 0.40, 0.17])  # the idle non-dominant hand during one-handed signs
_ELBOW_POLE = np.array([0.25, 1.0, 0.35])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame_quat(u: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Quaternion of the proper rotation with columns (u, n', u × n'), n' orthogonalised against u, its sign fixed:
    the first component that is not zero positive. (q and -q are one rotation, and which one scipy returns for the
    lexicon's axis-aligned orientations, whose components tie, depends on the machine's float rounding.)"""
    u = _unit(np.asarray(u, dtype=np.float64))
    n = _unit(np.asarray(n, dtype=np.float64) - np.dot(n, u) * u)
    q = Rotation.from_matrix(np.stack([u, n, np.cross(u, n)], axis=1)).as_quat()
    return q if q[np.flatnonzero(np.abs(q) > 1e-9)[0]] > 0 else -q


_MIRROR = np.array([-1.0, 1.0, 1.0])


def _mirror_quat(quat: np.ndarray) -> np.ndarray:
    """The left-hand counterpart of a right-hand orientation (reflect u and n in x)."""
    m = Rotation.from_quat(quat).as_matrix()
    u, n = m[..., :, 0] * _MIRROR, m[..., :, 1] * _MIRROR
    return _frame_quat(u, n)


def _continuous(quat: np.ndarray) -> np.ndarray:
    """(n, 4) quaternions of the same rotations, each with the sign nearer the one before (q and -q are one rotation).
    A smoothing filter across a sign change averages opposite quaternions: the hand would flip at that frame (a sign
    held through a sign ends where the transition to the next took the short way round)."""
    flips = np.cumsum(np.einsum("ij,ij->i", quat[1:], quat[:-1]) < 0) % 2 == 1
    out = quat.copy()
    out[1:][flips] *= -1
    return out


def _constant(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False  # shared by every sentence: a write would change them all
    return a


# The hand orientations every sentence reuses, computed once: a rotation through scipy costs about as much
# as the rest of a sign's rendering. (right hand, left hand) quaternions.
_REST_QUAT = _constant(_frame_quat(np.array([-0.25, 0.55, 0.8]), np.array([-1.0, 0.0, 0.0])))
_REST_QUAT_LEFT = _constant(_mirror_quat(_REST_QUAT))
_LOW_QUAT_LEFT = _constant(_mirror_quat(_frame_quat(np.array([-0.6, 0.3, 0.75]), np.array([0.0, -0.6, 0.4]))))
_BASE_QUAT_LEFT = _constant(_mirror_quat(_frame_quat(np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0]))))


@cache
def _orientation_quats(orientation: str) -> tuple[np.ndarray, np.ndarray]:
    """(right hand, left hand) quaternions of a lexicon orientation."""
    u, nrm = (np.asarray(v, dtype=np.float64) for v in ORIENTATIONS[orientation])
    quat = _frame_quat(u, nrm)
    return _constant(quat), _constant(_mirror_quat(quat))


@dataclass(frozen=True)
class Signer:
    """Body proportions and habits of one signer (all lengths in PT units)."""

    shoulder_width: float = 0.334
    head_height: float = 0.20
    upper_arm: float = 0.27
    forearm: float = 0.25
    hand_scale: float = 1.0
    speed: float = 1.0  # > 1 signs faster (shorter signs)
    amplitude: float = 1.0  # scales movement sizes

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Signer:
        return cls(
            shoulder_width=0.334 * (1 + rng.normal(0, 0.004)),
            head_height=0.20 * (1 + rng.normal(0, 0.04)),
            upper_arm=0.27 * (1 + rng.normal(0, 0.03)),
            forearm=0.25 * (1 + rng.normal(0, 0.03)),
            hand_scale=1 + rng.normal(0, 0.04),
            speed=float(rng.uniform(0.85, 1.15)),
            amplitude=float(rng.uniform(0.85, 1.15)),
        )


@dataclass
class _Track:
    """Per-frame targets of one hand: wrist position (n, 3), orientation quaternion (n, 4), shape (n, 15)."""

    pos: np.ndarray
    quat: np.ndarray
    shape: np.ndarray

    @staticmethod
    def hold(pos: np.ndarray, quat: np.ndarray, shape: np.ndarray, n: int) -> _Track:
        return _Track(np.tile(pos, (n, 1)), np.tile(quat, (n, 1)), np.tile(shape, (n, 1)))

    @staticmethod
    def cat(tracks: list[_Track]) -> _Track:
        return _Track(*(np.concatenate([getattr(t, f) for t in tracks]) for f in ("pos", "quat", "shape")))


def _smoothstep(n: int) -> np.ndarray:
    """n interior blend weights in (0, 1) with zero slope at both ends."""
    x = np.arange(1, n + 1) / (n + 1)
    return x * x * (3 - 2 * x)


def _transition(a: _Track, b: _Track, n: int) -> _Track:
    """Co-articulation from the last frame of ``a`` to the first frame of ``b`` over n frames."""
    w = _smoothstep(n)[:, None]
    qa, qb = a.quat[-1], b.quat[0]
    if np.dot(qa, qb) < -1e-9:  # take the short way round (half-turns apart, dot 0: either way, one fixed)
        qb = -qb
    return _Track(
        pos=(1 - w) * a.pos[-1] + w * b.pos[0],
        quat=_unit((1 - w) * qa + w * qb),
        shape=(1 - w) * a.shape[-1] + w * b.shape[0],
    )


def _perpendicular(d: np.ndarray) -> np.ndarray:
    ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    return _unit(np.cross(d, ref))


def _movement(sign: Sign, n: int, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Wrist offsets (n, 3) and finger-flexion offsets (n, 4) of a sign's movement."""
    tau = np.linspace(0.0, 1.0, n)[:, None]
    d = np.asarray(sign.direction)
    p = _perpendicular(d)
    ease = tau * tau * (3 - 2 * tau)
    flex = np.zeros((n, 4))
    match sign.movement:
        case Movement.STRAIGHT:
            off = (ease - 0.5) * size * d
        case Movement.ARC:
            off = (ease - 0.5) * size * d + np.sin(np.pi * tau) * 0.35 * size * p
        case Movement.CIRCLE:
            ang = 2 * np.pi * ease
            off = 0.45 * size * (np.sin(ang) * d + (1 - np.cos(ang)) * p)
        case Movement.ZIGZAG:
            tri = 2 * np.abs(((3 * tau) % 1.0) - 0.5) - 0.5
            off = (tau - 0.5) * size * d + 0.5 * size * tri * p
        case Movement.TAP:
            off = 0.45 * size * (1 - np.cos(2 * np.pi * sign.repeats * tau)) / 2 * d
        case Movement.WIGGLE:
            off = 0.1 * size * np.sin(np.pi * tau) * d
            phase = np.arange(4)[None, :] * 0.9
            flex = 0.3 * np.sin(2 * np.pi * sign.repeats * tau + phase) * np.sin(np.pi * tau)
    return off, flex


def _sign_tracks(sign: Sign, signer: Signer, rng: np.random.Generator) -> tuple[_Track, _Track]:
    """(dominant, non-dominant) tracks of one sign instance, both in world coordinates."""
    n = max(6, round(sign.duration / signer.speed * rng.uniform(0.9, 1.1)) - 2)
    loc = np.asarray(LOCATIONS[sign.location]) + rng.normal(0, 0.008, 3)
    off, flex = _movement(sign, n, sign.size * signer.amplitude)
    quat, quat_left = _orientation_quats(sign.orientation)
    shape = np.tile(sign.handshape.vector(), (n, 1))
    shape[:, 0:8:2] = np.clip(shape[:, 0:8:2] + flex, 0, 1)  # wiggle bends the knuckles
    shape[:, 1:8:2] = np.clip(shape[:, 1:8:2] + flex, 0, 1)
    dom = _Track(loc + off, np.tile(quat, (n, 1)), shape)
    match sign.handedness:
        case Handedness.ONE:
            other = _Track.hold(_LOW_WRIST * _MIRROR, _LOW_QUAT_LEFT, REST_HANDSHAPE.vector(), n)
        case Handedness.SYMMETRIC:
            mirror_off = -off if sign.alternating else off
            loc_other = loc.copy()
            loc_other[0] = max(loc[0], 0.07)  # two hands need room between them
            dom.pos = loc_other + off
            other = _Track((loc_other + mirror_off) * _MIRROR, np.tile(quat_left, (n, 1)), shape.copy())
        case Handedness.BASE:
            base = np.array([0.04, max(loc[1] + 0.08, 0.14), 0.22])
            other = _Track.hold(base * _MIRROR, _BASE_QUAT_LEFT, sign.base_handshape.vector(), n)
            dom.pos = base + np.array([0.0, -0.06, 0.0]) + off
    return dom, other


def _two_bone_ik(
    shoulder: np.ndarray, target: np.ndarray, a: float, b: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and (reach-clamped) wrist positions, (n, 3) each, for upper arm a and forearm b."""
    d_vec = target - shoulder
    dist = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    e = d_vec / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(a - b) + 1e-4, a + b - 1e-4)
    wrist = shoulder + dist * e
    x = (a * a - b * b + dist * dist) / (2 * dist)  # along the shoulder-wrist line
    r = np.sqrt(np.maximum(a * a - x * x, 0.0))
    bend = _unit(pole - np.sum(pole * e, axis=-1, keepdims=True) * e)
    return shoulder + x * e + r * bend, wrist


def _hand_joints(wrist: np.ndarray, quat: np.ndarray, shape: np.ndarray, side: float, scale: float) -> np.ndarray:
    """Forward kinematics of a 21-joint hand: (n, 21, 3) from wrist (n, 3), quat (n, 4), shape (n, 15).

    ``side`` is +1 for the right hand and −1 for the left (the thumb side t = side · u × n).
    """
    m = Rotation.from_quat(quat).as_matrix()
    u, nrm = m[:, None, :, 0], m[:, None, :, 1]  # (n, 1, 3)
    t = side * np.cross(u, nrm)
    flex = shape[:, :8].reshape(-1, 4, 2)
    spread = shape[:, 8:12]
    abduction, opposition, curl = shape[:, 12:13], shape[:, 13:14], shape[:, 14:15]

    root = wrist[:, None, :] + scale * _HAND_ROOT * u  # (n, 1, 3)
    knuckle = root + scale * (_PALM[None, :, None] * u + _ACROSS[None, :, None] * t)  # (n, 4, 3)
    angles = np.stack([flex[..., 0], flex[..., 1], flex[..., 1]], axis=-1) * _MAX_FLEX  # (n, 4, 3)
    cum = np.cumsum(angles, axis=-1)[..., None]  # (n, 4, 3, 1)
    base = np.cos(spread)[..., None] * u + np.sin(spread)[..., None] * t  # (n, 4, 3)
    dirs = np.cos(cum) * base[:, :, None, :] + np.sin(cum) * nrm[:, :, None, :]  # (n, 4, 3 bones, 3)
    fingers = knuckle[:, :, None, :] + np.cumsum(scale * _PHALANGES[None, :, :, None] * dirs, axis=2)
    fingers = np.concatenate([knuckle[:, :, None, :], fingers], axis=2)  # (n, 4, 4, 3)

    cmc = root + scale * _THUMB[0] * _unit(0.5 * u + 0.8 * t + 0.3 * nrm)  # (n, 1, 3)
    d1 = _unit(
        np.cos(opposition)[:, None] * (np.cos(abduction)[:, None] * u + np.sin(abduction)[:, None] * t)
        + np.sin(opposition)[:, None] * nrm
    )
    across = _unit(nrm - 0.6 * t)
    d2 = _unit(np.cos(0.9 * curl)[:, None] * d1 + np.sin(0.9 * curl)[:, None] * across)
    d3 = _unit(np.cos(1.6 * curl)[:, None] * d1 + np.sin(1.6 * curl)[:, None] * across)
    thumb = [cmc]
    for length, d in zip(_THUMB[1:], (d1, d2, d3), strict=True):
        thumb.append(thumb[-1] + scale * length * d)
    thumb = np.concatenate(thumb, axis=1)  # (n, 4, 3)
    return np.concatenate([root, thumb, fingers.reshape(-1, 16, 3)], axis=1)


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, sigma: float, scale: float) -> np.ndarray:
    """Low-frequency noise (n, dims) with standard deviation about ``scale``."""
    raw = gaussian_filter1d(rng.normal(0, 1, (n + 8, dims)), sigma, axis=0, mode="nearest")[4:-4]
    return raw / max(float(raw.std()), 1e-9) * scale


class SignAnimator:
    """Turns gloss sequences into skeleton sequences for a lexicon.

    Args:
        lexicon: the gloss → sign map.
        skeleton: the output layout; must be the PT 50-joint layout.
    """

    def __init__(self, lexicon: Lexicon, skeleton: Skeleton = PT50) -> None:
        if skeleton.names != PT50.names:
            raise ValueError("the synthetic signer animates the PT 50-joint layout only")
        self.lexicon, self.skeleton = lexicon, skeleton
        index = {name: i for i, name in enumerate(skeleton.names)}
        self._head, self._neck = index["head"], index["neck"]
        self._right = [index[f"right_{j}"] for j in ("shoulder", "elbow", "wrist")]
        self._left = [index[f"left_{j}"] for j in ("shoulder", "elbow", "wrist")]
        self._right_hand, self._left_hand = skeleton.part("right_hand"), skeleton.part("left_hand")

    def plan(self, glosses: Sequence[str | Sign], signer: Signer, rng: np.random.Generator) -> tuple[_Track, _Track]:
        """Dominant (right) and non-dominant (left) hand tracks for a whole sentence."""
        rest_r = _Track.hold(_REST_WRIST, _REST_QUAT, REST_HANDSHAPE.vector(), 1)
        rest_l = _Track.hold(_REST_WRIST * _MIRROR, _REST_QUAT_LEFT, REST_HANDSHAPE.vector(), 1)
        n_start = int(rng.integers(5, 10))
        right, left = [_hold_n(rest_r, n_start)], [_hold_n(rest_l, n_start)]
        signs: list[Sign | None] = [g if isinstance(g, Sign) else self.lexicon(g) for g in glosses]
        signs.append(None)
        for sign in signs:
            if sign is None:
                n_end = int(rng.integers(5, 10))
                nxt_r, nxt_l = _hold_n(rest_r, n_end), _hold_n(rest_l, n_end)
            else:
                nxt_r, nxt_l = _sign_tracks(sign, signer, rng)
            gap = max(
                np.linalg.norm(nxt_r.pos[0] - right[-1].pos[-1]),
                np.linalg.norm(nxt_l.pos[0] - left[-1].pos[-1]),
            )
            n_tr = int(np.clip(round((2 + gap / 0.07) / signer.speed), 2, 7))
            right += [_transition(right[-1], nxt_r, n_tr), nxt_r]
            left += [_transition(left[-1], nxt_l, n_tr), nxt_l]
        return _Track.cat(right), _Track.cat(left)

    def animate(self, glosses: Sequence[str | Sign], signer: Signer, rng: np.random.Generator) -> np.ndarray:
        """A (S, J, 3) float32 skeleton sequence signing ``glosses`` (strings or explicit signs)."""
        right, left = self.plan(glosses, signer, rng)
        S = len(right.pos)
        for track, sigma in ((right, 1.3), (left, 1.3)):
            track.pos = gaussian_filter1d(track.pos, sigma, axis=0, mode="nearest") + _smooth_noise(
                rng, S, 3, 4.0, 0.004
            )
            track.shape = gaussian_filter1d(track.shape, 1.0, axis=0, mode="nearest")
            track.quat = _unit(gaussian_filter1d(_continuous(track.quat), 1.0, axis=0, mode="nearest"))

        pose = np.zeros((S, self.skeleton.num_joints, 3))
        # Head: small nods and turns around the neck.
        angles = _smooth_noise(rng, S, 3, 6.0, 0.04)
        head = np.array([0.0, -signer.head_height, 0.02])
        pose[:, self._head] = Rotation.from_rotvec(angles).apply(head)
        # Shoulders: a slight rock about the neck, following the dominant hand's height.
        rock = 0.03 * np.tanh((right.pos[:, 1] - 0.3) * 3) + _smooth_noise(rng, S, 1, 8.0, 0.01)[:, 0]
        half = signer.shoulder_width / 2
        shoulder_line = half * np.stack([np.cos(rock), np.sin(rock), np.zeros(S)], axis=1)
        for (s_idx, e_idx, w_idx), hand, track, side in (
            (self._right, self._right_hand, right, 1.0),
            (self._left, self._left_hand, left, -1.0),
        ):
            shoulder = side * shoulder_line
            pole = _ELBOW_POLE * (_MIRROR if side < 0 else 1.0)
            elbow, wrist = _two_bone_ik(shoulder, track.pos, signer.upper_arm, signer.forearm, pole)
            pose[:, s_idx], pose[:, e_idx], pose[:, w_idx] = shoulder, elbow, wrist
            pose[:, hand] = _hand_joints(wrist, track.quat, track.shape, side, signer.hand_scale)
        pose[:, self._neck] = 0.0
        return pose.astype(np.float32)

    def frame_count(self, glosses: Sequence[str | Sign], signer: Signer, rng: np.random.Generator) -> int:
        """The number of frames :meth:`animate` would produce with the same generator state."""
        return len(self.plan(glosses, signer, rng)[0].pos)


def _hold_n(track: _Track, n: int) -> _Track:
    return _Track.hold(track.pos[-1], track.quat[-1], track.shape[-1], n)
