"""The synthetic sign lexicon: gloss → sign, deterministic from the gloss string and a seed.

A sign has, per hand, a handshape (per-finger flexion and spread, thumb pose), an orientation, a
location near a body landmark and a movement, plus a handedness (one-handed, symmetric two-handed,
or dominant hand acting on a static base hand) and a duration.

Like real sign languages, the lexicon has minimal pairs: the location, movement, orientation and
handedness of a gloss come from one of a limited number of *families*, and glosses of one family
differ by their handshape (and small size/duration details). A model that blurs fingers therefore
confuses glosses — hand shape carries meaning.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

import numpy as np


def stable_rng(*keys: object) -> np.random.Generator:
    """A random generator seeded from a stable hash of ``keys`` (independent of PYTHONHASHSEED)."""
    digest = hashlib.blake2b("\x1f".join(map(str, keys)).encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


@dataclass(frozen=True)
class Handshape:
    """Finger configuration. Angles in radians.

    Attributes:
        flex: (4, 2) MCP and PIP flexion of index, middle, ring, pinky in [0, 1] (1 = fully bent);
            the DIP joint follows the PIP.
        spread: (4,) sideways angle of each finger from the hand axis, towards the thumb positive.
        thumb: (abduction, opposition, curl) — angle away from the palm axis towards the thumb side,
            tilt towards the palm, and flexion of its distal joints in [0, 1].
    """

    name: str
    flex: tuple[tuple[float, float], ...]
    spread: tuple[float, float, float, float]
    thumb: tuple[float, float, float]

    def vector(self) -> np.ndarray:
        """Flat parameter vector (15,), the quantity interpolated between signs."""
        return np.concatenate([np.ravel(self.flex), self.spread, self.thumb]).astype(np.float64)


_STRAIGHT, _FIST, _CLOSE = (0.0, 0.0), (1.0, 1.0), (0.0, 0.0)
_THUMB_IN, _THUMB_OUT, _THUMB_OVER = (0.2, 0.5, 0.35), (1.1, 0.0, 0.0), (0.45, 1.0, 0.65)
_FAN = (0.2, 0.07, -0.07, -0.2)

HANDSHAPES: tuple[Handshape, ...] = (
    Handshape("B", (_STRAIGHT,) * 4, (0.02, 0.0, 0.0, -0.02), _THUMB_IN),
    Handshape("5", (_STRAIGHT,) * 4, _FAN, _THUMB_OUT),
    Handshape("A", (_FIST,) * 4, (0.0,) * 4, (0.15, 0.0, 0.1)),
    Handshape("S", (_FIST,) * 4, (0.0,) * 4, _THUMB_OVER),
    Handshape("1", (_STRAIGHT, _FIST, _FIST, _FIST), (0.0,) * 4, _THUMB_OVER),
    Handshape("V", (_STRAIGHT, _STRAIGHT, _FIST, _FIST), (0.2, -0.15, 0.0, 0.0), _THUMB_OVER),
    Handshape("W", (_STRAIGHT, _STRAIGHT, _STRAIGHT, _FIST), (0.2, 0.0, -0.2, 0.0), _THUMB_OVER),
    Handshape("Y", (_FIST, _FIST, _FIST, _STRAIGHT), (0.0, 0.0, 0.0, -0.35), _THUMB_OUT),
    Handshape("L", (_STRAIGHT, _FIST, _FIST, _FIST), (0.05, 0.0, 0.0, 0.0), _THUMB_OUT),
    Handshape("C", ((0.4, 0.45),) * 4, (0.05, 0.0, 0.0, -0.05), (0.8, 0.5, 0.2)),
    Handshape("O", ((0.55, 0.7),) * 4, (0.0,) * 4, (0.6, 0.9, 0.5)),
    Handshape("I", (_FIST, _FIST, _FIST, _STRAIGHT), (0.0,) * 4, _THUMB_OVER),
    Handshape("bent-B", ((1.0, 0.0),) * 4, (0.0,) * 4, _THUMB_IN),
    Handshape("claw", ((0.15, 0.85),) * 4, _FAN, (0.9, 0.3, 0.6)),
    Handshape("F", ((0.6, 0.75), _STRAIGHT, _STRAIGHT, _STRAIGHT), (0.0, 0.05, -0.05, -0.15), (0.7, 0.9, 0.55)),
    Handshape("3", (_STRAIGHT, _STRAIGHT, _FIST, _FIST), (0.2, -0.1, 0.0, 0.0), _THUMB_OUT),
    Handshape("X", ((0.2, 1.0), _FIST, _FIST, _FIST), (0.0,) * 4, _THUMB_OVER),
)
"""Seventeen handshapes, named after their common sign-language letters."""

REST_HANDSHAPE = Handshape("rest", ((0.25, 0.3), (0.3, 0.35), (0.35, 0.4), (0.4, 0.45)), (0.0,) * 4, (0.3, 0.3, 0.2))

# Locations of the dominant (right) wrist, relative to the neck, in the PT frame: +x is the
# signer's right, y points down, z towards the camera. Mirrored in x for the left hand.
LOCATIONS: dict[str, tuple[float, float, float]] = {
    "forehead": (0.03, -0.23, 0.13),
    "temple": (0.10, -0.20, 0.09),
    "nose": (0.02, -0.17, 0.15),
    "chin": (0.02, -0.10, 0.14),
    "cheek": (0.09, -0.14, 0.10),
    "ear": (0.13, -0.19, 0.05),
    "throat": (0.02, -0.01, 0.12),
    "chest": (0.00, 0.13, 0.15),
    "chest-same": (0.10, 0.11, 0.14),
    "shoulder-other": (-0.11, 0.05, 0.12),
    "shoulder-same": (0.15, 0.04, 0.11),
    "stomach": (0.02, 0.30, 0.17),
    "neutral": (0.07, 0.20, 0.28),
    "neutral-high": (0.09, 0.04, 0.30),
    "neutral-side": (0.21, 0.20, 0.24),
    "neutral-low": (0.06, 0.32, 0.25),
}

# Hand orientations as (finger direction u, palm normal n) for the right hand; x is mirrored for
# the left hand. u and n are orthonormal.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "up-palm-forward": ((0, -1, 0), (0, 0, 1)),
    "up-palm-in": ((0, -1, 0), (-1, 0, 0)),
    "up-palm-back": ((0, -1, 0), (0, 0, -1)),
    "forward-palm-down": ((0, 0, 1), (0, 1, 0)),
    "forward-palm-up": ((0, 0, 1), (0, -1, 0)),
    "forward-palm-in": ((0, 0, 1), (-1, 0, 0)),
    "across-palm-back": ((-1, 0, 0), (0, 0, -1)),
    "across-palm-down": ((-1, 0, 0), (0, 1, 0)),
    "diagonal-palm-forward": ((-0.7071, -0.7071, 0), (0, 0, 1)),
}


class Movement(Enum):
    STRAIGHT = "straight"
    ARC = "arc"
    CIRCLE = "circle"
    ZIGZAG = "zigzag"
    TAP = "tap"
    WIGGLE = "wiggle"  # the fingers flutter while the hand holds its place


class Handedness(Enum):
    ONE = "one"  # the non-dominant hand stays low
    SYMMETRIC = "symmetric"  # both hands mirror each other
    BASE = "base"  # the dominant hand moves on or near a static non-dominant base hand


@dataclass(frozen=True)
class Sign:
    """One lexical sign. Directions are unit vectors in the right-hand frame."""

    gloss: str
    handshape: Handshape
    orientation: str
    location: str
    movement: Movement
    direction: tuple[float, float, float]
    size: float
    repeats: int
    handedness: Handedness
    base_handshape: Handshape
    alternating: bool
    duration: int


_DIRECTIONS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -1, 0], [0, 1, 1], [1, 0, 1], [-1, 1, 0]],
    dtype=np.float64,
)
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)


class Lexicon:
    """Maps any gloss string to a :class:`Sign`, deterministically from ``(seed, gloss)``.

    Args:
        seed: the lexicon seed; one seed is one sign language.
        families: number of location/movement/orientation/handedness families shared by glosses.
    """

    def __init__(self, seed: int = 0, families: int = 48) -> None:
        self.seed, self.families = seed, families
        self._cache: dict[str, Sign] = {}

    def family(self, gloss: str) -> int:
        return int(stable_rng(self.seed, "family", gloss).integers(self.families))

    def __call__(self, gloss: str) -> Sign:
        sign = self._cache.get(gloss)
        if sign is None:
            sign = self._cache[gloss] = self._make(gloss)
        return sign

    def _make(self, gloss: str) -> Sign:
        fam = stable_rng(self.seed, "family-params", self.family(gloss))
        own = stable_rng(self.seed, "sign", gloss)
        location = str(fam.choice(list(LOCATIONS)))
        movement = Movement(fam.choice([m.value for m in Movement], p=[0.22, 0.2, 0.15, 0.13, 0.18, 0.12]))
        handedness = Handedness(fam.choice([h.value for h in Handedness], p=[0.55, 0.3, 0.15]))
        return Sign(
            gloss=gloss,
            handshape=HANDSHAPES[int(own.integers(len(HANDSHAPES)))],
            orientation=str(fam.choice(list(ORIENTATIONS))),
            location=location,
            movement=movement,
            direction=tuple(_DIRECTIONS[int(fam.integers(len(_DIRECTIONS)))] * (1 if fam.random() < 0.5 else -1)),
            size=float(fam.uniform(0.05, 0.10) * own.uniform(0.9, 1.1)),
            repeats=int(fam.integers(2, 4)),
            handedness=handedness,
            base_handshape=HANDSHAPES[int(fam.choice([0, 2, 9, 3]))],
            alternating=bool(fam.random() < 0.3),
            duration=int(np.clip(round(fam.uniform(8, 15) + own.normal(0, 1.5)), 8, 24)),
        )
