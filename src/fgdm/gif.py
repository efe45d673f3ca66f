"""GIF files: which frames a GIF keeps and the delays that make it play at a frame rate (:func:`gif_timing`), and
writing one a frame at a time (:func:`write_gif`). What is drawn on the frames: :mod:`fgdm.render`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def gif_stride(fps: float) -> int:
    """k of the every k-th frame a GIF keeps at ``fps`` (:func:`gif_timing`)."""
    return max(1, math.ceil(fps / 50 - 1e-9))


def gif_timing(n: int, fps: float) -> tuple[list[int], list[int]]:
    """The frames a GIF keeps and their delays in milliseconds, so that it plays at ``fps``.

    GIF delays are whole hundredths of a second, and browsers play delays under 2 hundredths as 10: above 50
    fps every k-th frame is kept (k = ⌈fps / 50⌉). Each frame's delay is the difference of its rounded start
    times, so delays of 3 and 4 hundredths alternate at 30 fps and the whole keeps time.
    """
    k = gif_stride(fps)
    keep = list(range(0, n, k))
    rate = fps / k
    starts = [round(100 * i / rate) for i in range(len(keep) + 1)]
    return keep, [10 * (b - a) for a, b in itertools.pairwise(starts)]


_MAX_DELAY = 655350  # ms: a GIF frame's delay is 16 bits of hundredths of a second


def write_gif(path: Path | str, frames: Iterable[np.ndarray], durations: Sequence[int]) -> None:
    """RGB frames with their delays (ms) as a looping GIF, written one frame at a time; holds the previous frame
    only. The frames are those Pillow writes from them all at once (``save_all``): each quantised to its own
    palette, each after the first cropped to what changed, one that shows the same as the one before merged
    into it with their delays added; but one frame makes a GIF too (Pillow takes a list of delays only for
    several)."""
    from PIL import GifImagePlugin

    pending, shown = None, None  # the frame to write once the next one differs; the pixels last shown
    with Path(path).open("wb") as f:

        def put(image: Image.Image, offset: tuple[int, int], ms: int, first: bool) -> None:
            f.write(b"".join(GifImagePlugin.getdata(image, offset, duration=ms, include_color_table=not first)))

        for frame, ms in zip(frames, durations, strict=True):
            image = Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE)
            pixels = np.asarray(image.convert("RGB"))
            if shown is None:
                f.write(b"".join(GifImagePlugin.getheader(image, None, {"loop": 0, "duration": ms})[0]))
                pending, shown = [image, (0, 0), ms, True], pixels
                continue
            changed = (pixels != shown).any(-1)
            if not changed.any() and pending[2] + ms <= _MAX_DELAY:
                pending[2] += ms
                continue
            put(*pending)
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1) if len(rows) else (0, 0, 1, 1)
            pending, shown = [image.crop(box), box[:2], ms, False], pixels
        if pending is None:
            raise ValueError(f"{path}: no frames")
        put(*pending)
        f.write(b";")
