"""What the commands refuse before any work: replacing what is there, writing below a file."""

from __future__ import annotations

from pathlib import Path


def refuse_existing(paths: list[Path], overwrite: bool, option: str = "--out") -> None:
    """Never replace what is there without ``--overwrite``; ``option``: the argument that names them."""
    found = [str(p) for p in paths if p.exists()]
    if found and not overwrite:
        listed = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        verb, them = ("exists", "it") if len(found) == 1 else ("exist", "them")
        raise ValueError(f"{listed} {verb} already: choose another {option}, or --overwrite to replace {them}")


def refuse_unwritable(path: Path) -> None:
    """Before any work: a file where ``path``'s directories would go fails now, not after the work."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{path}: {parent} is a file, not a directory")


def refuse_nonempty(out: Path, overwrite: bool, what: str = "its splits") -> None:
    """A directory that holds files is written into only with ``--overwrite`` (``what``: what it writes again);
    hidden ones (a Mac's ``.DS_Store``) are none."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file: --out is the directory to write")
    if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()) and not overwrite:
        raise ValueError(f"{out} is not empty: choose a new directory, or --overwrite to write {what} again")
