"""Rendering skeleton sequences to GIF and MP4, alone or side by side.

Frames are drawn with Pillow from the skeleton's bones (fast: no plotting library per frame) and go to the
file one at a time (a GIF's through :mod:`fgdm.gif`), so a long render takes as little memory as a short one.
Files are written beside their target and renamed into place once whole: a failed render leaves no partial
file behind. The PT convention mirrors x against the image; we un-mirror it so the signer faces the viewer.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.util
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from numbers import Real
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fgdm.gif import gif_stride, gif_timing, write_gif
from fgdm.runtime import replacing
from fgdm.skeleton import CONVENTION, FINGERS, JOINTS_PER_FINGER, PT50, Skeleton, convention_problem

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


def missing_glyphs(text: str) -> str:
    """The letters of ``text`` that :func:`title_font` has no glyph for (it would draw them as boxes)."""
    font = title_font()
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow's bitmap font: ASCII only
        return "".join(dict.fromkeys(c for c in text if not c.isascii()))

    def drawn(c: str) -> tuple[tuple[int, int], bytes]:
        mask = font.getmask(c)
        return mask.size, bytes(mask)

    box = drawn("\uffff")  # a non-character: the font's "no glyph" box
    return "".join(dict.fromkeys(c for c in text if not c.isspace() and drawn(c) == box))


@functools.lru_cache(maxsize=256)
def fit_title(text: str, width: int) -> str:
    """``text`` as it fits ``width`` pixels in :func:`title_font`: whole, else cut short with an ellipsis. Letters
    the font lacks are warned of once per title (without DejaVu Sans, Pillow's font lacks umlauts)."""
    font = title_font()
    if missing := missing_glyphs(text):
        warnings.warn(f"title {text!r}: the title font has no {' '.join(missing)}, drawn as boxes; DejaVu Sans "
                      "draws them (Debian's fonts-dejavu-core, or pip install matplotlib)", stacklevel=3)  # fmt: skip
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


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

    def visible(self, poses: np.ndarray) -> float:
        """The share of the points of (..., J, 3) poses that fall inside the panel (NaN points count as outside)."""
        x, y = poses[..., 0] - self.centre[0], poses[..., 1] - self.centre[1]
        inside = (np.abs(x) <= self.extent) & (np.abs(y) <= self.extent)
        return float(inside.mean()) if inside.size else 1.0

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
        if title:  # within its panel: a long one would run into the next
            draw.text((6, 4), fit_title(title, self.size - 12), fill=(30, 30, 30), font=self._font)
        return np.asarray(img)

    def frames(
        self, sequences: Sequence[np.ndarray], titles: Sequence[str] | None = None, indices: Iterable[int] | None = None
    ) -> Iterator[np.ndarray]:
        """Frames showing several (S_k, J, 3) sequences side by side, drawn one at a time as they are taken;
        shorter sequences hold their last pose. ``indices``: only these frames (default all, 0 … max S_k - 1)."""
        if not sequences:
            raise ValueError("nothing to render")
        if isinstance(titles, str):  # one sequence's title, not its characters as titles
            titles = [titles]
        titles = list(titles) if titles is not None else [None] * len(sequences)
        if len(titles) != len(sequences):
            raise ValueError(f"{len(titles)} titles for {len(sequences)} sequences")
        indices = range(max(len(s) for s in sequences)) if indices is None else indices
        pairs = list(zip(sequences, titles, strict=True))
        return (np.concatenate([self.frame(s[min(i, len(s) - 1)], t) for s, t in pairs], axis=1) for i in indices)


MIN_FPS, MAX_FPS = 0.01, 1000.0  # a GIF's longest frame delay is 655.35 s


def warn_unconventional(named: Iterable[tuple[str, np.ndarray]], skeleton: Skeleton = PT50) -> None:
    """A warning for each (name, sequence) read to be drawn that is not in the PT convention (millimetres or
    centimetres, y up: drawn, but not as a signer; ``fgdm render``'s inputs). Not for a model's outputs, which an
    under-trained model may place anywhere: that is no unit to fix."""
    for name, seq in named:
        if problem := convention_problem(seq, skeleton):
            warnings.warn(f"{name}: not in the PT convention ({CONVENTION}): {problem}", stacklevel=2)


def animation_format(path: Path | str) -> str:
    """The format, ``.gif`` or ``.mp4``, that ``path``'s extension names (in any case); a clear error for any
    other name."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".gif", ".mp4"):
        return suffix
    if path.is_dir():
        raise ValueError(f"{path} is a directory: name the animation file to write (e.g. {path / 'out.gif'})")
    if not suffix:
        raise ValueError(f"{path}: an animation's name ends in .gif or .mp4 (e.g. out.gif)")
    raise ValueError(f"{path}: unsupported animation format {suffix!r} (use .gif or .mp4)")


def shown_frames(count: int, fps: float, path: Path | str) -> str:
    """What an animation of ``count`` frames at ``fps`` shows, in words: '93 frames at 50 fps (one in 2 of 185
    at 100 fps: a GIF plays at most 50 a second)' (:func:`gif_timing`)."""
    keep = gif_timing(count, fps)[0] if animation_format(path) == ".gif" else range(count)
    k = gif_stride(fps) if len(keep) < count else 1
    said = f"{len(keep)} frame{'s' if len(keep) != 1 else ''} at {fps / k:g} fps"
    return said if k == 1 else f"{said} (one in {k} of {count} at {fps:g} fps: a GIF plays at most 50 a second)"


def _as_sequences(sequences) -> list[np.ndarray]:  # one (S, J, 3) sequence or several, as arrays or nested lists
    shapes = None if hasattr(sequences, "ndim") else {np.shape(f) for f in sequences}  # a list: of frames (J, 3)?
    one = sequences.ndim != 4 if shapes is None else len(shapes) == 1 and len(f := shapes.pop()) == 2 and f[-1] == 3
    return [np.asarray(sequences, dtype=np.float32)] if one else [np.asarray(s, dtype=np.float32) for s in sequences]


def save_animation(
    path: Path | str,
    sequences: np.ndarray | Sequence[np.ndarray],
    titles: str | Sequence[str] | None = None,
    fps: float = 25,
    renderer: Renderer | None = None,
    progress: bool | None = None,
) -> Path:
    """Writes a GIF or MP4 (by extension) of one (S, J, 3) sequence or several side by side, frame by frame.

    ``fps``: the poses' frame rate: 25 for PT data, ``loaded.fps`` for a model's poses (12.5 for the shipped model:
    at the default they would play twice as fast). A sequence that lies mostly outside the picture (poses not in
    the PT convention) is warned of. ``progress``: a progress bar on stderr; None (default): on a terminal, once a
    render has taken 2 seconds.
    """
    from tqdm.auto import tqdm

    path, sequences = Path(path), _as_sequences(sequences)
    if not sequences:
        raise ValueError(f"{path}: no sequence to draw")
    renderer = renderer or Renderer()
    joints = renderer.skeleton.num_joints
    for k, seq in enumerate(sequences):
        if seq.ndim != 3 or seq.shape[-1] != 3 or len(seq) == 0 or seq.shape[1] != joints:
            raise ValueError(f"{path}: sequence {k} has shape {seq.shape}, expected (S, {joints}, 3) with S ≥ 1")
    suffix = animation_format(path)
    if not isinstance(fps, Real) or isinstance(fps, bool):
        raise ValueError(f"{path}: fps: a number of frames per second, got {fps!r}")
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise ValueError(f"{path}: {fps:g} frames per second; an animation plays at {MIN_FPS:g} to {MAX_FPS:g}")
    for k, seq in enumerate(sequences):
        if renderer.visible(seq) < 0.1:  # pixels, millimetres: the frames would show a dot or the titles only
            points = seq[..., :2].reshape(-1, 2)
            points = points[np.isfinite(points).all(1)]
            if not len(points):
                warnings.warn(f"{path}: sequence {k} has no finite point to draw", stacklevel=2)
                continue
            (lo, hi), (cx, cy) = (points.min(0), points.max(0)), renderer.centre
            warnings.warn(f"{path}: sequence {k} lies mostly outside the picture (x {lo[0]:.3g} … {hi[0]:.3g}, y "
                          f"{lo[1]:.3g} … {hi[1]:.3g}; the panel shows ±{renderer.extent:g} around ({cx:g}, {cy:g})): "
                          f"not in the PT convention ({CONVENTION}; pixels, millimetres?)", stacklevel=2)  # fmt: skip
    count = max((len(s) for s in sequences), default=0)
    keep, durations = gif_timing(count, fps) if suffix == ".gif" else (list(range(count)), [])
    frames = renderer.frames(list(sequences), titles, keep)
    bar = tqdm(frames, total=len(keep), desc="render", unit="frame", delay=0 if progress else 2,
               disable=None if progress is None else not progress)  # fmt: skip
    with replacing(path) as tmp, contextlib.closing(bar):
        if suffix == ".gif":
            write_gif(tmp, bar, durations)
        else:
            write_mp4(tmp, bar, fps, len(keep))
    return path


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float, count: int) -> None:
    """H.264 through imageio's ffmpeg; refused, naming ``path``, where ffmpeg did not write all ``count`` frames
    (a full disk: it says so on its own output only, and leaves a file no player reads)."""
    import imageio.v3 as iio
    import imageio_ffmpeg

    path.touch()  # a folder not writable is named by Python here, not by ffmpeg's broken pipe
    with iio.imopen(path, "w", plugin="FFMPEG") as file:
        writer = file.legacy_get_writer(fps=fps, codec="libx264", macro_block_size=8)
        try:
            for frame in frames:  # (drawing's own errors go as they are)
                with _ffmpeg_failure(path):
                    writer.append_data(frame)
        except BaseException:  # imageio leaves the writer open on an error: ffmpeg would write on later
            with contextlib.suppress(Exception):
                writer.close()
            raise
        with _ffmpeg_failure(path):
            writer.close()
    with _ffmpeg_failure(path):
        written = imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    if written != count:
        raise OSError(errno.EIO, f"ffmpeg wrote {written} of its {count} frames (a full disk?)", str(path))


@contextlib.contextmanager
def _ffmpeg_failure(path: Path) -> Iterator[None]:
    """ffmpeg's failures (imageio's: its command and output in one long message) as one line naming ``path``."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        said = (str(err).splitlines() or [type(err).__name__])[0]
        raise OSError(errno.EIO, f"ffmpeg could not write it (a full disk?): {said}", str(path)) from err


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

    ``closeups`` adds a row per sequence with the most active hand of the last sequence, relative to its root in
    every frame and magnified to the box its joints fill over the frames shown (in every row alike), so finger
    shapes can be compared, none cut off.
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
        rel = np.concatenate([(s[idx][:, hand, :2] - s[idx][:, [hand.start], :2]).reshape(-1, 2) for s in sequences])
        rel = rel[np.isfinite(rel).all(-1)]  # each joint from its root, over the frames shown
        lo, hi = (rel.min(0), rel.max(0)) if len(rel) else (np.zeros(2), np.zeros(2))
        centre, extent = (lo + hi) / 2, 0.6 * (hi - lo).max()  # a box around them all, with a 20 % margin
        if extent < 0.01:  # a hand of one point: as a hand of usual size
            centre, extent = np.zeros(2), renderer.extent / 5
        zoom = Renderer(renderer.skeleton, size=size, extent=float(extent), centre=(float(centre[0]), float(centre[1])))
        side = "left" if hand == renderer.skeleton.part("left_hand") else "right"  # the signer's
        for seq, label in zip(sequences, labels, strict=True):
            cells = [zoom.frame(seq[i] - seq[i, hand.start], f"{label} {side} hand {i}".strip(), only=hand)
                     for i in idx]  # fmt: skip
            rows.append(np.concatenate(cells, axis=1))
    img = Image.fromarray(np.concatenate(rows, axis=0))
    if title:
        canvas = Image.new("RGB", (img.width, img.height + 18), _BACKGROUND)
        canvas.paste(img, (0, 18))
        ImageDraw.Draw(canvas).text((6, 3), fit_title(title, img.width - 12), fill=(0, 0, 0), font=title_font())
        img = canvas
    path = Path(path)
    with replacing(path) as tmp:
        img.save(tmp)
    return path


def save_comparison(
    path: Path | str,
    generated: np.ndarray,
    truth: np.ndarray,
    title: str = "",
    fps: float = 25,
    progress: bool | None = None,
) -> tuple[Path, Path]:
    """A generated-vs-true GIF at ``path`` and, beside it, a PNG contact sheet with hand close-ups."""
    path, generated, truth = Path(path), np.asarray(generated, np.float32), np.asarray(truth, np.float32)
    gif = save_animation(path, [generated, truth], ["generated", "ground truth"], fps=fps, progress=progress)
    sheet = save_contact_sheet(
        path.with_suffix(".png"),
        [generated, truth],
        columns=6,
        title=title,
        labels=["generated", "true"],
        closeups=True,
    )
    return gif, sheet
