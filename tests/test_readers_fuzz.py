"""Every reader, fed damaged input: it either reads it correctly or refuses it cleanly, naming the file.

A clean refusal is a ValueError (DataFormatError, ConfigError) whose message names the file; anything
else (an IndexError, a TypeError, a NaN pose, a hang) is a bug. Inputs are valid files with random
edits (bytes replaced, inserted, deleted, cut short) and random bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgdm.config import Config, load_config
from fgdm.data.io import load_npy, load_pose, save_npy, save_pose
from fgdm.data.pt import read_split
from fgdm.data.sources import SynthManifest
from fgdm.data.synth.corpus import SynthCorpus

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Characters a damaged text file of numbers and words is made of, invalid UTF-8 and a BOM included.
ALPHABET = [*list(b"0123456789 .-+eE\n\r\tnaifNAIF|,:{}[]\"'#"), 255, 239, 187, 191, 0]


@st.composite
def damaged(draw, original: bytes) -> bytes:
    """``original`` with a few random edits, or cut short, or replaced by random bytes."""
    kind = draw(st.sampled_from(["edit", "cut", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    if kind == "cut":
        return original[: draw(st.integers(0, max(len(original) - 1, 0)))]
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from(ALPHABET))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        if op == "insert" or not data:
            data[pos:pos] = bytes([byte])
        elif op == "replace":
            data[min(pos, len(data) - 1)] = byte
        else:
            del data[min(pos, len(data) - 1)]
    return bytes(data)


def _clean_refusal(err: Exception, path: Path) -> bool:
    return isinstance(err, ValueError) and path.name in str(err)


@pytest.fixture(scope="module")
def pt_dir(tmp_path_factory) -> Path:
    from fgdm.data.synth.corpus import write_pt

    out = tmp_path_factory.mktemp("pt")
    write_pt(SynthCorpus(3, "dev", seed=5), out, progress=False)
    return out


@pytest.mark.parametrize("ext", ["skels", "gloss", "text", "files"])
@FUZZ
@given(data=st.data())
def test_pt_split_files(pt_dir, tmp_path_factory, ext, data):
    work = tmp_path_factory.mktemp("w")
    for e in ("skels", "gloss", "text", "files"):
        shutil.copy(pt_dir / f"dev.{e}", work / f"dev.{e}")
    target = work / f"dev.{ext}"
    original = target.read_bytes()
    if ext == "skels":  # edits inside the numbers, not only at the start of a 30 kB line
        original = original[:2000] + original[2000:].split(b"\n", 1)[-1] if b"\n" in original[2000:] else original
    target.write_bytes(data.draw(damaged(original)))
    try:
        split = read_split(work, "dev")
    except Exception as err:
        assert _clean_refusal(err, target), repr(err)
        return
    assert len(split.poses) == len(split.glosses) == len(split.texts) == len(split.names)
    for pose in split.poses:
        assert pose.ndim == 3 and pose.shape[1:] == (50, 3) and len(pose) >= 1 and np.isfinite(pose).all()
        assert np.abs(pose).max() <= 1000
    assert all(g and all(g) for g in split.glosses) and not any("\ufeff" in t for g in split.glosses for t in g)


@FUZZ
@given(data=st.data())
def test_synth_manifest(tmp_path_factory, data):
    work = tmp_path_factory.mktemp("m")
    SynthManifest(seed=1, sizes={"train": 3, "dev": 2}).save(work)
    path = work / "synth.json"
    path.write_bytes(data.draw(damaged(path.read_bytes())))
    try:
        manifest = SynthManifest.load(work)
        lengths = {split: len(manifest.corpus(split, work)) for split in manifest.splits()}
    except Exception as err:
        assert _clean_refusal(err, path), repr(err)
        return
    assert all(n >= 0 for n in lengths.values())


@pytest.mark.parametrize("suffix", [".pose", ".npy"])
@FUZZ
@given(data=st.data())
def test_pose_and_npy_files(tmp_path_factory, suffix, data):
    work = tmp_path_factory.mktemp("p")
    pose = SynthCorpus(1, "dev", seed=2)[0].pose[:4]
    path = work / f"a{suffix}"
    (save_pose if suffix == ".pose" else save_npy)(path, pose)
    path.write_bytes(data.draw(damaged(path.read_bytes())))
    try:
        got = (load_pose if suffix == ".pose" else load_npy)(path)
    except Exception as err:
        assert _clean_refusal(err, path), repr(err)
        return
    assert got.ndim == 3 and got.shape[1:] == (50, 3) and len(got) >= 1 and np.isfinite(got).all()


@FUZZ
@given(data=st.data())
def test_config_yaml(tmp_path_factory, data):
    work = tmp_path_factory.mktemp("c")
    path = work / "c.yaml"
    path.write_bytes(data.draw(damaged(Path("configs/tiny.yaml").read_bytes())))
    try:
        cfg = load_config(path)
    except Exception as err:
        assert _clean_refusal(err, path), repr(err)
        return
    assert isinstance(cfg, Config)


@pytest.fixture(scope="module")
def small_checkpoint(trained, tmp_path_factory) -> bytes:
    """The tiny run's checkpoint without optimiser state (small enough to damage many times)."""
    import io

    import torch

    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    ckpt = {k: ckpt[k] for k in ("state_dict", "hyper_parameters", "global_step")}
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return buffer.getvalue()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_checkpoints(small_checkpoint, tmp_path_factory, data):
    from fgdm.sampling import load_for_sampling

    path = tmp_path_factory.mktemp("k") / "x.ckpt"
    path.write_bytes(data.draw(damaged(small_checkpoint)))
    try:
        loaded = load_for_sampling(path)
    except Exception as err:
        assert _clean_refusal(err, path), repr(err)[:300]
        return
    assert all(bool(p.isfinite().all()) for p in loaded.model.parameters())
    assert bool(loaded.model.normalizer.std.isfinite().all())


def test_a_checkpoint_is_read_as_tensors_and_plain_containers_only(tmp_path):
    """Nothing but tensors and plain containers is unpickled: an object of any other class is refused, not built."""
    import decimal
    import warnings

    import torch

    from fgdm.checkpoint import read_checkpoint

    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"lr": 1e-3, "names": ["a"]}}, tmp_path / "a")
    assert read_checkpoint(tmp_path / "a")["hyper_parameters"] == {"lr": 1e-3, "names": ["a"]}
    torch.save({"state_dict": {}, "hyper_parameters": {"x": decimal.Decimal(1)}}, tmp_path / "b")
    with pytest.raises(ValueError, match=r"b: not a readable checkpoint \(UnpicklingError: Unsupported global: GLOBAL "
                       r"decimal.Decimal was not an allowed global by default; fgdm's checkpoints hold tensors and "
                       r"plain containers only\)$"):  # fmt: skip
        read_checkpoint(tmp_path / "b")
    ran = tmp_path / "ran"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Runs(f"touch {ran}")}}, tmp_path / "c")
    with pytest.raises(ValueError, match=r"c: not a readable checkpoint \(UnpicklingError: Trying to load unsupported "
                       r"GLOBAL \w+\.system whose module \w+ is blocked; fgdm's checkpoints hold tensors and plain "
                       r"containers only\)$") as refused:  # fmt: skip
        read_checkpoint(tmp_path / "c")
    assert "weights_only" not in str(refused.value) and not ran.exists()  # no advice to load it in full; nothing ran
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "d"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=r"d: a TorchScript archive, not a checkpoint \(a training checkpoint "):
            read_checkpoint(tmp_path / "d")
    assert not seen  # torch's advice to call torch.jit.load is not passed on


class _Runs:
    """A pickle that runs a shell command when it is loaded in full."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_a_damaged_memo_index_in_a_checkpoint_costs_no_memory(tmp_path):
    """One damaged byte in a pickle's memo index (found by test_checkpoints: about 1 damaged checkpoint in 1,000)
    made Python's full unpickler grow its memo to twice the index, gigabytes, before reading on. Here the index is
    about 2**24: the full unpickler allocates 256 MiB for it."""
    import io
    import pickletools
    import tracemalloc
    import zipfile

    import torch

    from fgdm.checkpoint import read_checkpoint

    buffer = io.BytesIO()
    torch.save({"state_dict": {f"w{i}": torch.zeros(2) for i in range(300)}, "hyper_parameters": {}}, buffer)
    raw = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        pickle = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))  # stored, not compressed
    at = bytes(raw).find(pickle) + next(pos for op, _, pos in pickletools.genops(pickle) if op.name == "LONG_BINPUT")
    raw[at + 4] = 0x01  # the index's most significant byte
    (tmp_path / "x.ckpt").write_bytes(raw)
    tracemalloc.start()
    try:
        read_checkpoint(tmp_path / "x.ckpt")
    except ValueError as err:
        assert "not a readable checkpoint" in str(err)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB"
