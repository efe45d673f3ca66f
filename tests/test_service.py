"""The Python API as a live service uses it: workers forked after loading, requests from several threads, poses
written to a response's buffer or to files that are served while they are replaced."""

import io
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fgdm.sampling import generate_poses, load_for_sampling

# A pre-forking server (gunicorn --preload): the parent loads and samples on two threads, then forks a worker that
# samples the same request. Without fgdm's at-fork hook the worker waits forever in GNU OpenMP's thread pool.
FORKED_WORKER = """
import os, sys, time
import numpy as np
import torch
from fgdm import generate_poses, load_for_sampling

torch.set_num_threads(2)
loaded = load_for_sampling()
ids = loaded.vocab.encode_sentence("MORGEN NORD REGEN")
(parent,) = generate_poses(loaded, [ids], None, seed=3)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    (child,) = generate_poses(loaded, [ids], None, seed=3)
    os.write(write, f"{float(np.abs(child - parent).max())} {torch.get_num_threads()}".encode())
    os._exit(0)
os.close(write)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if os.waitpid(pid, os.WNOHANG)[0]:
        print(os.read(read, 100).decode())
        sys.exit(0)
    time.sleep(0.1)
os.kill(pid, 9)
sys.exit("the forked worker did not finish in 60 s")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this system")
def test_a_worker_forked_after_loading_samples_as_the_parent_on_one_thread():
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FORKED_WORKER)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    difference, threads = done.stdout.split()
    assert float(difference) < 1e-5 and threads == "1"


def test_no_full_garbage_collection_slows_the_first_requests():
    """Python's first full collection after importing torch takes about 0.1 s, four times a short sentence: it
    came in the third request; load_for_sampling runs it."""
    script = """
import gc
from fgdm import generate_poses, load_for_sampling

loaded = load_for_sampling()
ids = loaded.vocab.encode_sentence("MORGEN NORD REGEN")
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
for _ in range(8):
    generate_poses(loaded, [ids], None)
print(len(full))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0"]


def test_requests_from_several_threads_sample_as_one_at_a_time():
    loaded = load_for_sampling()
    words = loaded.vocab.itos[4:]
    requests = [([loaded.vocab.encode_sentence(words[i : i + 1 + i % 4])], 100 + i) for i in range(12)]
    alone = [generate_poses(loaded, ids, None, seed=seed)[0] for ids, seed in requests]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda r: generate_poses(loaded, r[0], None, seed=r[1])[0], requests))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6)


class Stream(io.RawIOBase):
    """A socket's or pipe's stream: bytes go out as written, with no going back (no tell, no seek)."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sent += bytes(data)
        return len(data)


def test_a_pose_is_written_to_a_file_object_as_to_a_file(tmp_path):
    from pose_format import Pose

    from fgdm.data.io import load_any, save_sequence

    pose = np.random.default_rng(0).normal(0, 0.3, (7, 50, 3)).astype(np.float32)
    for kind in ("pose", "npy"):
        buffer, stream = io.BytesIO(), Stream()
        assert save_sequence(buffer, pose, fps=12.5, kind=kind) is buffer
        save_sequence(stream, pose, fps=12.5, kind=kind)
        path = save_sequence(tmp_path / f"a.{kind}", pose, fps=12.5)
        assert buffer.getvalue() == stream.sent == path.read_bytes()
    assert Pose.read((tmp_path / "a.pose").read_bytes()).body.fps == 12.5
    np.testing.assert_array_equal(load_any(tmp_path / "a.npy"), pose)
    with pytest.raises(ValueError, match=r"a file object: kind 'npy' or 'pose' says what to write, got None"):
        save_sequence(io.BytesIO(), pose)
    with pytest.raises(ValueError, match=r"a file object for text: open it for bytes \('wb'\)"):
        save_sequence(io.StringIO(), pose, kind="npy")
    stream = Stream()
    with pytest.raises(ValueError, match="not finite"):  # refused before anything is sent
        save_sequence(stream, np.full((3, 50, 3), np.nan, np.float32), kind="pose")
    assert not stream.sent
    with pytest.raises(ValueError, match=r"b.npy: kind 'pose' for a .npy file"):
        save_sequence(tmp_path / "b.npy", pose, kind="pose")


def test_written_content_left_in_a_cycle_is_collected_without_an_error():
    """What a pose writer wrote in memory holds no view of its buffer: collected in a cycle (a caught error's frames
    make one), the buffer's closing failed under Python 3.13 while the view lived ("Exception ignored ...
    BufferError" on a service's stderr). Python 3.11 collects it without the error either way."""
    import gc

    from fgdm.data.io import _content

    seen = []
    hook, sys.unraisablehook = sys.unraisablehook, seen.append
    try:
        content = _content(lambda f: f.write(b"x" * 100))
        cycle = [content]
        cycle.append(cycle)
        del content, cycle
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not seen, [repr(u.exc_value) for u in seen]


def test_a_pose_file_is_replaced_whole_or_not_at_all(tmp_path):
    """Served while it is rewritten, a reader sees the old file or the new one, never a part; a refused pose leaves
    the old file and makes no folder; no hidden temporary stays behind."""
    from fgdm.data.io import load_any, save_sequence

    old = np.zeros((3, 50, 3), np.float32)
    new = np.full((400, 50, 3), 0.5, np.float32)
    for name in ("a.npy", "a.pose"):
        path = save_sequence(tmp_path / name, old)
        stop, seen = threading.Event(), set()

        def read(path=path, stop=stop, seen=seen):
            while not stop.is_set():
                try:
                    seen.add(len(load_any(path)))
                except Exception as err:  # a half-written file
                    seen.add(f"{type(err).__name__}: {err}")

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(20):
                save_sequence(path, new)
                save_sequence(path, old)
        finally:
            stop.set()
            reader.join()
        assert seen <= {3, 400}
        with pytest.raises(ValueError, match="not finite"):
            save_sequence(path, np.full((3, 50, 3), np.nan, np.float32))
        np.testing.assert_array_equal(load_any(path), old)
        with pytest.raises(ValueError, match="not finite"):
            save_sequence(tmp_path / "new" / name, np.full((3, 50, 3), np.nan, np.float32))
        assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.pose"]


def test_a_replaced_file_keeps_its_link_and_permissions_and_errors_name_it(tmp_path, monkeypatch):
    from fgdm.data.io import load_any, save_sequence
    from fgdm.runtime import replacing

    pose = np.zeros((3, 50, 3), np.float32)
    target = save_sequence(tmp_path / "take-1.npy", pose)
    target.chmod(0o600)
    (tmp_path / "latest.npy").symlink_to("take-1.npy")
    save_sequence(tmp_path / "latest.npy", pose + 0.5)  # written through the link
    assert (tmp_path / "latest.npy").is_symlink() and load_any(target)[0, 0, 0] == 0.5
    assert target.stat().st_mode & 0o777 == 0o600
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        save_sequence(tmp_path / "d.npy", pose)
    assert ".tmp" not in str(err.value) and str(tmp_path / "d.npy") in str(err.value)
    monkeypatch.setattr("fgdm.runtime.os.access", lambda path, mode: False)  # a read-only file (root writes any)
    with pytest.raises(PermissionError, match=r"take-1\.npy"), replacing(target):
        pytest.fail("a file that may not be written is refused before anything is written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "latest.npy", "take-1.npy"]


def test_a_compiled_denoiser_is_called_by_one_thread_at_a_time():
    """Requests from several threads take turns at a compiled denoiser (Dynamo compiles for one thread, CUDA graphs
    are recorded per thread); a watcher stands in for the compiled module and counts the threads inside it."""
    import dataclasses
    import time

    import torch

    loaded = load_for_sampling()
    inside, most = [0], [0]

    class Watcher(torch.nn.Module):
        def __init__(self, denoiser: torch.nn.Module) -> None:
            super().__init__()
            self.denoiser = denoiser

        def forward(self, *args, **kwargs):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.005)  # long enough for another thread to come in, if it may
            try:
                return self.denoiser(*args, **kwargs)
            finally:
                inside[0] -= 1

        def __getattr__(self, name: str):  # encode_glosses, step_contexts, dtype: the denoiser's, as compiled ones
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.denoiser, name)

    compiled = dataclasses.replace(loaded, compile=True, compiled=Watcher(loaded.model.denoiser))
    words = loaded.vocab.itos[4:]
    requests = [([loaded.vocab.encode_sentence(words[i : i + 1 + i % 3])], 200 + i) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda r: generate_poses(compiled, r[0], None, seed=r[1])[0], requests))
    assert most[0] == 1
    for (ids, seed), pose in zip(requests, together, strict=True):
        np.testing.assert_allclose(pose, generate_poses(loaded, ids, None, seed=seed)[0], atol=1e-6)
