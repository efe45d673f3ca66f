"""Animations and contact sheets: frames streamed to the file, written whole or not at all, hands and titles kept
within their panels."""

import tracemalloc
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from fgdm import render
from fgdm.data.synth.corpus import SynthCorpus
from fgdm.gif import gif_timing
from fgdm.render import Renderer, save_animation, save_contact_sheet

BACKGROUND = (250, 250, 247)


@pytest.fixture(scope="module")
def pose():
    return SynthCorpus(1, "test", seed=0)[0].pose[:40]


class Counting(Renderer):
    """A small renderer that counts the frames it has drawn, and fails at frame ``fail_at`` if given."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(size=64)
        self.drawn, self.fail_at = 0, fail_at

    def frame(self, pose, title=None, only=None):
        if self.drawn == self.fail_at:
            raise RuntimeError("drawing failed")
        self.drawn += 1
        return super().frame(pose, title, only)


def _gif(path) -> tuple[np.ndarray, list[int]]:
    frames, delays = [], []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
            delays.append(im.info["duration"])
    return np.stack(frames), delays


def test_a_one_frame_gif_is_written(tmp_path, pose):
    """Pillow takes a list of delays only for several frames: one frame (or two at 100 fps, of which a GIF keeps
    one) crashed, leaving a truncated file."""
    for name, seq, fps, ms in (("one.gif", pose[:1], 25, 40), ("two.gif", pose[:2], 100, 20)):
        frames, delays = _gif(save_animation(tmp_path / name, seq, fps=fps, renderer=Renderer(size=64)))
        assert frames.shape == (1, 64, 64, 3) and delays == [ms] and frames.std() > 1
    assert iio.imread(save_animation(tmp_path / "one.mp4", pose[:1], renderer=Renderer(size=64))).shape[0] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.gif", "one.mp4", "two.gif"]  # no temporary left


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_a_failed_animation_leaves_no_partial_file(tmp_path, pose, suffix):
    with pytest.raises(RuntimeError, match="drawing failed"):
        save_animation(tmp_path / f"a{suffix}", pose[:10], renderer=Counting(fail_at=5))
    assert not list(tmp_path.iterdir())  # nothing that would block a rerun ("exists already")
    (tmp_path / f"b{suffix}").write_bytes(b"an older render")
    with pytest.raises(RuntimeError, match="drawing failed"):
        save_animation(tmp_path / f"b{suffix}", pose[:10], renderer=Counting(fail_at=5))
    assert [p.name for p in tmp_path.iterdir()] == [f"b{suffix}"]
    assert (tmp_path / f"b{suffix}").read_bytes() == b"an older render"  # replaced only by a whole file


def test_a_failed_contact_sheet_leaves_no_partial_file(tmp_path, pose, monkeypatch):
    def fail(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OSError, match="No space left"):
        save_contact_sheet(tmp_path / "sheet.png", pose, columns=2, size=64)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_frames_go_to_the_writer_one_at_a_time(tmp_path, pose, suffix, monkeypatch):
    """Each frame reaches the writer as soon as it is drawn: no list of every frame, no stack of them."""
    renderer, seen = Counting(), []  # frames drawn when the writer takes each
    if suffix == ".gif":
        write = render.write_gif

        def spy(path, frames, durations):
            write(path, (seen.append(renderer.drawn) or f for f in frames), durations)

        monkeypatch.setattr(render, "write_gif", spy)
    else:
        from imageio.plugins.ffmpeg import FfmpegFormat

        append = FfmpegFormat.Writer._append_data

        def spy(self, im, meta):
            seen.append(renderer.drawn)
            return append(self, im, meta)

        monkeypatch.setattr(FfmpegFormat.Writer, "_append_data", spy)
    save_animation(tmp_path / f"a{suffix}", pose[:12], renderer=renderer)
    assert seen == list(range(1, 13))


def test_memory_does_not_grow_with_the_length(tmp_path, pose):
    def peak(frames: int) -> int:
        seq = np.concatenate([pose] * (frames // len(pose)))
        tracemalloc.start()
        try:
            save_animation(tmp_path / f"{frames}.gif", seq, renderer=Renderer(size=96))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short, long = peak(40), peak(200)  # 160 more frames of 27 KB: 4.4 MB if they were held, twice if stacked
    assert long < short + 1_000_000, (short, long)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_streamed_files_equal_those_written_all_at_once(tmp_path, pose, suffix):
    """The same frames, delays and frame rate as the former writing of a stack of every frame through imageio;
    a held pose (identical frames) is merged into one GIF frame, its delays added, as Pillow does."""
    held = np.concatenate([pose[:4], pose[3:4], pose[4:9]])
    sequences, titles, fps, renderer = [held, pose[:3]], ["gen", "gt"], 30, Renderer(size=96)
    new = save_animation(tmp_path / f"new{suffix}", sequences, titles, fps=fps, renderer=renderer)
    frames = list(renderer.frames(sequences, titles))
    old = tmp_path / f"old{suffix}"
    if suffix == ".gif":
        keep, durations = gif_timing(len(frames), fps)
        iio.imwrite(old, np.stack([frames[i] for i in keep]), extension=".gif", duration=durations, loop=0)
        (a, delays_a), (b, delays_b) = _gif(old), _gif(new)
        assert delays_a == delays_b and len(delays_b) == len(held) - 1 and sum(delays_b) == sum(durations)
    else:
        iio.imwrite(old, np.stack(frames), extension=".mp4", fps=fps, codec="libx264", macro_block_size=8)
        a, b = iio.imread(old), iio.imread(new)
        assert iio.immeta(new)["fps"] == fps and len(b) == len(held)
    np.testing.assert_array_equal(a, b)


def test_a_progress_bar_on_request_and_none_off_a_terminal(tmp_path, pose, capsys):
    save_animation(tmp_path / "a.gif", pose[:5], renderer=Renderer(size=48), progress=True)
    assert "render" in capsys.readouterr().err.replace("\r", "\n").splitlines()[-1].split(":")[0]
    save_animation(tmp_path / "b.gif", pose[:5], renderer=Renderer(size=48))  # the default: on a terminal only
    assert capsys.readouterr().err == ""


def test_hand_closeups_show_every_finger_of_a_large_hand(tmp_path, pose):
    """The close-up fits the hands' farthest joint over the frames shown: a hand three times the usual size ran
    out of the former fixed ±0.12 box, fingers cut off at the cell's edge."""
    big = pose[:12].copy()
    for part in ("left_hand", "right_hand"):
        hand = render.PT50.part(part)
        big[:, hand] = big[:, [hand.start]] + 3 * (big[:, hand] - big[:, [hand.start]])
    size = 96
    sheet = np.asarray(Image.open(save_contact_sheet(tmp_path / "s.png", big, columns=3, size=size, closeups=True)))
    assert sheet.shape == (2 * size, 3 * size, 3)
    for c in range(3):
        cell = sheet[size:, c * size : (c + 1) * size].astype(int)
        assert (np.abs(cell - BACKGROUND).sum(-1) > 0).sum() > 100  # a hand is drawn
        edges = np.concatenate([cell[0], cell[-1], cell[:, 0], cell[:, -1]])
        assert (edges == BACKGROUND).all(), f"cell {c}: the hand runs out of its box"


def test_a_long_title_stays_in_its_panel(pose):
    title = "a title of sixty characters, as the CLI cuts them, too long"
    assert render.title_font().getlength(title) > 148  # wider than a 160-pixel panel's room
    fitted = render.fit_title(title, 148)
    assert fitted.endswith("…") and render.title_font().getlength(fitted) <= 148
    assert render.fit_title("gen", 148) == "gen"
    frame = next(Renderer(size=160).frames([pose, pose], [title, ""]))
    band = frame[:20].astype(int)  # the titles' rows; the head is drawn lower
    assert (np.abs(band[:, :140] - BACKGROUND).sum(-1) > 60).any()  # the first title is drawn
    assert (band[:, 154:] == BACKGROUND).all()  # and ends before the next panel (which has none)


def test_letters_the_title_font_lacks_are_warned_of(monkeypatch):
    from PIL import ImageFont

    assert render.missing_glyphs("SÜD über") == ""  # DejaVu Sans, as on the test machines (matplotlib has it)
    render.fit_title.cache_clear()
    monkeypatch.setattr(render, "title_font", lambda size=11: ImageFont.load_default(size=size))  # no DejaVu
    try:
        assert render.missing_glyphs("SÜD über NORD") == "Üü"
        with pytest.warns(UserWarning, match=r"'SÜD über': the title font has no Ü ü, drawn as boxes"):
            render.fit_title("SÜD über", 148)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            render.fit_title("NORD", 148)
    finally:
        render.fit_title.cache_clear()
