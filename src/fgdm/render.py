"""Rendering skeleton sequences to GIF and MP4, alone or side by side.

Frames are drawn with Pillow from the skeleton's bones (fast: no plotting library per frame).
The PT convention mirrors x against the image; we un-mirror it so the signer faces the viewer.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fgdm.skeleton import FINGERS, JOINTS_PER_FINGER, PT50, Skeleton

_BODY = (70, 70, 80)
_FINGER_COLOURS = ((230, 80, 60), (240, 160, 40), (60, 170, 90), (50, 130, 220), (150, 80, 200))
_BACKGROUND = (250, 250, 247)


def _bone_colours(skeleton: Skeleton) -> list[tuple[int, int, int]]:
    """One colour per bone: the body dark, each finger its own colour (both hands alike)."""
    colours = []
    hand_starts = {skeleton.part(p).start for p in ("left_hand", "right_hand")}
    for child, _ in skeleton.bones:
        start = next((s for s in hand_starts if s <= child < s + 1 + len(FINGERS) * JOINTS_PER_FINGER), None)
        if start is None or child == start:
            colours.append(_BODY)
        else:
            colours.append(_FINGER_COLOURS[(child - start - 1) // JOINTS_PER_FINGER])
    return colours


@functools.cache
def title_font(size: int = 11) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans where the system (or matplotlib) has it, for titles with umlauts and accents (SÜD, über);
    Pillow's built-in font, which draws those as boxes, where neither has."""
    candidates = ["DejaVuSans.ttf"]  # Pillow looks it up in the system's font folders
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(str(Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"))
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default()


class Renderer:
    """Draws (J, 3) poses into RGB frames.

    Args:
        size: panel width and height in pixels.
        extent: half the visible width in pose units around ``centre``.
        centre: the (x, y) pose point drawn at the middle of the panel.
    """

    def __init__(
        self,
        skeleton: Skeleton = PT50,
        size: int = 320,
        extent: float = 0.6,
        centre: tuple[float, float] = (0.0, 0.12),
    ) -> None:
        self.skeleton, self.size, self.extent, self.centre = skeleton, size, extent, centre
        self._bones = np.asarray(skeleton.bones)
        self._colours = _bone_colours(skeleton)
        self._hand_bone = np.array([c >= skeleton.hands.start for c, _ in skeleton.bones])
        self._font = title_font()

    def to_pixels(self, pose: np.ndarray) -> np.ndarray:
        """(J, 3) pose → (J, 2) pixel coordinates (x un-mirrored, y down)."""
        scale = self.size / (2 * self.extent)
        px = (-(pose[:, 0] - self.centre[0])) * scale + self.size / 2
        py = (pose[:, 1] - self.centre[1]) * scale + self.size / 2
        return np.stack([px, py], axis=1)

    def frame(self, pose: np.ndarray, title: str | None = None, only: range | None = None) -> np.ndarray:
        """One (H, W, 3) uint8 image of a (J, 3) pose; ``only``: draw just the bones ending in these joints."""
        img = Image.new("RGB", (self.size, self.size), _BACKGROUND)
        draw = ImageDraw.Draw(img)
        pts = self.to_pixels(np.asarray(pose, dtype=np.float64))
        if not np.isfinite(pts).all():
            draw.text((8, self.size // 2), "non-finite pose", fill=(200, 0, 0), font=self._font)
        else:
            head = self.skeleton.names.index("head") if "head" in self.skeleton.names else None
            if head is not None and only is None:
                r = 0.075 * self.size / (2 * self.extent)
                x, y = pts[head]
                draw.ellipse((x - r, y - r * 1.2, x + r, y + r * 1.2), outline=_BODY, width=2)
            body_w = max(2, self.size // 80)
            for (c, p), colour, is_hand in zip(self._bones, self._colours, self._hand_bone, strict=True):
                if only is not None and c not in only:
                    continue
                draw.line([tuple(pts[c]), tuple(pts[p])], fill=colour, width=1 if is_hand else body_w)
                if is_hand:
                    draw.line([tuple(pts[c]), tuple(pts[p])], fill=colour, width=2)
        if title:
            draw.text((6, 4), title, fill=(30, 30, 30), font=self._font)
        return np.asarray(img)

    def frames(self, sequences: Sequence[np.ndarray], titles: Sequence[str] | None = None) -> list[np.ndarray]:
        """Frames showing several (S_k, J, 3) sequences side by side; shorter ones hold their last pose."""
        if not sequences:
            raise ValueError("nothing to render")
        titles = list(titles) if titles is not None else [None] * len(sequences)
        if len(titles) != len(sequences):
            raise ValueError(f"{len(titles)} titles for {len(sequences)} sequences")
        S = max(len(s) for s in sequences)
        out = []
        for i in range(S):
            panels = [self.frame(seq[min(i, len(seq) - 1)], t) for seq, t in zip(sequences, titles, strict=True)]
            out.append(np.concatenate(panels, axis=1))
        return out


MIN_FPS, MAX_FPS = 0.01, 1000.0  # a GIF's longest frame delay is 655.35 s


def gif_timing(n: int, fps: float) -> tuple[list[int], list[int]]:
    """The frames a GIF keeps and their delays in milliseconds, so that it plays at ``fps``.

    GIF delays are whole hundredths of a second, and browsers play delays under 2 hundredths as 10: above 50
    fps every k-th frame is kept (k = ⌈fps / 50⌉). Each frame's delay is the difference of its rounded start
    times, so delays of 3 and 4 hundredths alternate at 30 fps and the whole keeps time.
    """
    k = max(1, math.ceil(fps / 50 - 1e-9))
    keep = list(range(0, n, k))
    rate = fps / k
    starts = [round(100 * i / rate) for i in range(len(keep) + 1)]
    return keep, [10 * (b - a) for a, b in itertools.pairwise(starts)]


def save_animation(
    path: Path | str,
    sequences: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    fps: float = 25,
    renderer: Renderer | None = None,
) -> Path:
    """Writes a GIF or MP4 (by extension) of one (S, J, 3) sequence or several side by side."""
    import imageio.v3 as iio

    path = Path(path)
    if isinstance(sequences, np.ndarray) and sequences.ndim == 3:
        sequences = [sequences]
    for k, seq in enumerate(sequences):
        if seq.ndim != 3 or seq.shape[-1] != 3:
            raise ValueError(f"sequence {k} has shape {seq.shape}, expected (S, J, 3)")
    suffix = path.suffix.lower()
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise ValueError(f"{path}: {fps:g} frames per second; an animation plays at {MIN_FPS:g} to {MAX_FPS:g}")
    frames = (renderer or Renderer()).frames(list(sequences), titles)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        keep, durations = gif_timing(len(frames), fps)
        iio.imwrite(path, np.stack([frames[i] for i in keep]), extension=".gif", duration=durations, loop=0)
    elif suffix == ".mp4":
        iio.imwrite(path, np.stack(frames), extension=".mp4", fps=fps, codec="libx264", macro_block_size=8)
    else:
        raise ValueError(f"{path}: unsupported animation format {suffix!r} (use .gif or .mp4)")
    return path


def active_hand(sequence: np.ndarray, skeleton: Skeleton = PT50) -> range:
    """The hand (joint range) whose root travels furthest over an (S, J, 3) sequence."""
    hands = [skeleton.part("left_hand"), skeleton.part("right_hand")]
    travel = [np.linalg.norm(np.diff(sequence[:, h.start], axis=0), axis=-1).sum() for h in hands]
    return hands[int(np.argmax(travel))]


def save_contact_sheet(
    path: Path | str,
    sequence: np.ndarray | Sequence[np.ndarray],
    columns: int = 6,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    size: int = 200,
    closeups: bool = False,
) -> Path:
    """A PNG of evenly spaced frames of one sequence, or one row per sequence (e.g. generated above
    ground truth, the same frame indices in each row), for reports and quick looks.

    ``closeups`` adds a row per sequence with the most active hand of the last sequence, magnified
    five times and centred on its root in every frame, so finger shapes can be compared.
    """
    sequences = [sequence] if isinstance(sequence, np.ndarray) and sequence.ndim == 3 else list(sequence)
    labels = list(labels) if labels is not None else [""] * len(sequences)
    if len(labels) != len(sequences):
        raise ValueError(f"{len(labels)} labels for {len(sequences)} sequences")
    renderer = Renderer(size=size)
    idx = np.linspace(0, min(len(s) for s in sequences) - 1, columns).round().astype(int)
    rows = [
        np.concatenate([renderer.frame(seq[i], f"{label} {i}".strip() if label else f"frame {i}") for i in idx], axis=1)
        for seq, label in zip(sequences, labels, strict=True)
    ]
    if closeups:
        hand = active_hand(sequences[-1], renderer.skeleton)
        zoom = Renderer(renderer.skeleton, size=size, extent=renderer.extent / 5, centre=(0.0, 0.0))
        for seq, label in zip(sequences, labels, strict=True):
            cells = [zoom.frame(seq[i] - seq[i, hand.start], f"{label} hand {i}".strip(), only=hand) for i in idx]
            rows.append(np.concatenate(cells, axis=1))
    img = Image.fromarray(np.concatenate(rows, axis=0))
    if title:
        canvas = Image.new("RGB", (img.width, img.height + 18), _BACKGROUND)
        canvas.paste(img, (0, 18))
        ImageDraw.Draw(canvas).text((6, 3), title, fill=(0, 0, 0), font=title_font())
        img = canvas
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def save_comparison(
    path: Path | str, generated: np.ndarray, truth: np.ndarray, title: str = "", fps: float = 25
) -> tuple[Path, Path]:
    """A generated-vs-true GIF at ``path`` and, beside it, a PNG contact sheet with hand close-ups."""
    path = Path(path)
    gif = save_animation(path, [generated, truth], ["generated", "ground truth"], fps=fps)
    sheet = save_contact_sheet(
        path.with_suffix(".png"),
        [generated, truth],
        columns=6,
        title=title,
        labels=["generated", "true"],
        closeups=True,
    )
    return gif, sheet
