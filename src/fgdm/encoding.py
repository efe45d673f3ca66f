"""What a text file that is not UTF-8 most likely is, said in fgdm's error messages with the way to convert it:
gzip-compressed data, UTF-16 (with its byte-order mark, or without: a NUL beside every ASCII letter, which UTF-8's
decoder would take as text full of NULs), or a one-byte encoding of older editors (Windows-1252, Latin-1).
Plain Python, for every reader of text (data files, configs)."""

from __future__ import annotations

import codecs

GZIP_MAGIC = b"\x1f\x8b"
CONVERT = "iconv -f {encoding} -t UTF-8 FILE > FILE.utf8"


def whole_file_problem(data: bytes) -> str | None:
    """Why the whole of ``data`` is no UTF-8 text, where one look at its start tells (gzip, UTF-16), else None."""
    if data.startswith(GZIP_MAGIC):
        return "gzip-compressed, not text: decompress it first (gunzip -k FILE.gz)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ("UTF-16 text (it starts with UTF-16's byte-order mark), not UTF-8: convert it, e.g. "
                f"{CONVERT.format(encoding='UTF-16')}")  # fmt: skip
    head = data[:4096]
    halves = head[0::2], head[1::2]
    if len(head) >= 4 and any(half.count(0) >= 0.8 * len(half) for half in halves):  # ASCII letters in UTF-16
        order = "UTF-16BE" if halves[0].count(0) > halves[1].count(0) else "UTF-16LE"
        return (f"{order} text without a byte-order mark (a NUL byte beside every letter), not UTF-8: convert it, "
                f"e.g. {CONVERT.format(encoding=order)}")  # fmt: skip
    return None


def not_utf8(data: bytes, at: int) -> str:
    """What is wrong where ``data`` stops being UTF-8, at byte ``at``: the byte, its place in its line and, where
    Windows-1252 reads it as a letter (0xFC 'ü'), that encoding's name and the conversion."""
    column = at - data.rfind(b"\n", 0, at)
    said = f"not UTF-8 text (byte {column} of the line, 0x{data[at]:02X})"
    char = bytes([data[at]]).decode("cp1252", errors="ignore")
    if char.isalpha():
        said += (f": {char!r} in Windows-1252 or Latin-1, an older editor's encoding? convert the file, e.g. "
                 f"{CONVERT.format(encoding='WINDOWS-1252')}")  # fmt: skip
    return said
