"""What a text file that is not UTF-8 most likely is, said in fgdm's error messages with the command that converts
it: gzip-compressed data, UTF-16 (with its byte-order mark, or without: then NUL bytes, which UTF-8's decoder would
take as text full of NULs), or a one-byte encoding of older editors (Windows-1252, Latin-1). Plain Python, for every
reader of text (data files, configs)."""

from __future__ import annotations

import codecs
import unicodedata

GZIP_MAGIC = b"\x1f\x8b"


def _convert(encoding: str, name: str) -> str:
    return f"iconv -f {encoding} -t UTF-8 {name} > {name}.utf8 && mv {name}.utf8 {name}"


def decompress(name: str) -> str:
    """The command that decompresses the gzip file ``name`` in place (``x.gz`` → ``x``; a name without .gz kept)."""
    return f"gunzip -k {name}" if name.endswith(".gz") else f"gzip -dc {name} > {name}.txt && mv {name}.txt {name}"


def whole_file_problem(data: bytes, name: str) -> str | None:
    """Why the whole of ``data``, the file ``name``, is no UTF-8 text where a look at its start tells (gzip, zip,
    UTF-16, NUL bytes only), else None."""
    if data.startswith(GZIP_MAGIC):
        return f"gzip-compressed, not text: decompress it ({decompress(name)})"
    if data.startswith(b"PK\x03\x04"):  # no conversion to offer: a checkpoint given where text belongs, say
        return "a zip archive (a PyTorch checkpoint, .ckpt or .pt?), not text"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return (
            f"UTF-16 text (it starts with UTF-16's byte-order mark), not UTF-8: convert it ({_convert('UTF-16', name)})"
        )
    head = data[:4096]
    nuls = head.count(0)
    if head and nuls == len(head):
        return "NUL bytes, no text (a file emptied by a crash or a full disk?)"
    even = head[: len(head) // 2 * 2]
    at_even, at_odd = even[0::2].count(0), even[1::2].count(0)
    # UTF-16 text of any script has NULs (in its spaces, digits and line ends), all at one parity; a stray NUL in
    # UTF-8 text is one among thousands of bytes, and is named where it stands
    if nuls >= max(4, len(head) // 100) and min(at_even, at_odd) <= 0.05 * max(at_even, at_odd):
        order = "UTF-16BE" if at_even > at_odd else "UTF-16LE"
        try:
            even.decode(order)
        except UnicodeDecodeError:
            return None
        return (f"{order} text without a byte-order mark (NUL bytes between its letters), not UTF-8: convert it "
                f"({_convert(order, name)})")  # fmt: skip
    return None


def not_utf8(data: bytes, at: int, reason: str, name: str) -> str:
    """What is wrong where ``data``, the file ``name``, stops being UTF-8, at byte ``at`` (the decoder's
    ``reason``): the byte, its place in its line and, where Windows-1252 reads it as a letter, a punctuation mark or a
    symbol (0xFC 'ü', 0x92 '’'), that encoding's name and the conversion."""
    column = at - data.rfind(b"\n", 0, at)
    said = f"not UTF-8 text (byte {column} of the line, 0x{data[at]:02X}: {reason})"
    char = bytes([data[at]]).decode("cp1252", errors="ignore")
    if reason != "unexpected end of data" and char and unicodedata.category(char)[0] in "LPS":
        said += (f"; {char!r} in Windows-1252 or Latin-1, an older editor's encoding? convert the file "
                 f"({_convert('WINDOWS-1252', name)})")  # fmt: skip
    return said
