"""Token vocabularies for glosses and for spoken-language text (joeynmt conventions)."""

from __future__ import annotations

import difflib
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

UNK, PAD, BOS, EOS = "<unk>", "<pad>", "<s>", "</s>"
SPECIALS: tuple[str, ...] = (UNK, PAD, BOS, EOS)
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


# Default-ignorable characters that Unicode classes as letters or marks (fillers, variation selectors): as
# invisible as the format characters (category Cf), and refused with them.
_IGNORABLE = frozenset([0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810),
                        *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])  # fmt: skip


def _odd(char: str) -> bool:
    if char in " \t":
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp") or ord(char) in _IGNORABLE


def odd_character(text: str, allow: str = "") -> int | None:
    """The index of the first character of ``text`` that fgdm refuses in glosses and words, or None: a control
    character (but tab), an invisible one (zero-width space or joiner, soft hyphen, direction mark, byte-order
    mark, variation selector, filler) or a space other than U+0020 (no-break, thin, ideographic, line separator).
    Each would split a gloss where none shows, or make one that looks like another; ``allow``: characters
    accepted all the same (a reader's line ends)."""
    odd = {c for c in set(text) if c not in allow and _odd(c)}
    return min(text.find(c) for c in odd) if odd else None


def odd_character_problem(text: str, at: int) -> str:
    """Says what the character ``text[at]`` found by :func:`odd_character` is and what to do about it."""
    char = text[at]
    name = f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character')})"
    if unicodedata.category(char) in ("Zs", "Zl", "Zp"):
        return (f"an unusual space, {name}, at character {at + 1}: only a plain space or a tab separates glosses "
                "and words; type a plain space")  # fmt: skip
    return (f"an invisible or control character, {name}, at character {at + 1}: it would make a gloss or word "
            "that looks like another but is not; remove it")  # fmt: skip


def gloss_tokens(text: str, what: str = "--gloss") -> list[str]:
    """The glosses of a sentence typed as one string (``fgdm generate --gloss``), split at spaces and tabs; refuses
    the characters :func:`odd_character` names (a no-break space would split a gloss unseen, a zero-width space
    make a new one), as the data files' reader does."""
    at = odd_character(text, allow="\n\r")
    if at is not None:
        raise ValueError(f"{what}: {odd_character_problem(text, at)}")
    return text.split()


def token_problem(token: object, what: str = "glosses") -> str | None:
    """What makes ``token`` no gloss (or word) of a sentence, or None: not a string, empty, a space or a character
    :func:`odd_character` names in it, or a vocabulary's own token. ``what`` names the kind (plural)."""
    one = _singular(what)
    if not isinstance(token, str):
        return f"{token!r} is no {one} (a string)"
    if not token:
        return f"an empty {one}"
    if token in SPECIALS:
        return f"{token} is a vocabulary's own token, not a {one}"
    if any(c.isspace() for c in token):
        return f"{token!r} holds a space or a line break: give each {one} on its own"
    at = odd_character(token)
    return f"{token!r}: {odd_character_problem(token, at)}" if at is not None else None


def _singular(what: str) -> str:
    """One of the kind ``what`` names: "glosses" → "gloss", "words" → "word"."""
    return what[:-2] if what.endswith("sses") else what[:-1] if what.endswith("s") else what


def tokenize_text(text: str) -> list[str]:
    """Lower-cased words and punctuation marks as separate tokens (the BLEU/ROUGE tokenisation), in Unicode's
    composed form (NFC: "kälter" typed with a combining diaeresis is the same word)."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text).lower())


class UnknownTokenWarning(UserWarning):
    """Tokens outside the vocabulary were mapped to ``<unk>``."""


class Vocabulary:
    """A list of tokens whose first four entries are ``<unk> <pad> <s> </s>``."""

    def __init__(self, tokens: Iterable[str]) -> None:
        itos = list(tokens)
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {' '.join(SPECIALS)}, got {' '.join(itos[:4])}")
        seen: set[str] = set()
        duplicates = [t for t in itos if t in seen or seen.add(t)]  # type: ignore[func-returns-value]
        if duplicates:
            raise ValueError(f"duplicate vocabulary entries: {duplicates[:10]}")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}

    unk_index, pad_index, bos_index, eos_index = 0, 1, 2, 3

    @classmethod
    def from_corpus(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1) -> Vocabulary:
        """Builds a vocabulary from tokenised sentences: most frequent first, ties alphabetical."""
        counts = Counter(tok for sent in sentences for tok in sent)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
            key=lambda t: (-counts[t], t),
        )
        return cls([*SPECIALS, *kept])

    @classmethod
    def from_file(cls, path: Path | str) -> Vocabulary:
        """Reads one token a line (e.g. PHOENIX14T's ``src_vocab.txt``); errors name the file and the line."""
        from fgdm.data.pt import DataFormatError, refuse_repeats, text_lines

        path = Path(path)
        lines = [line.strip() for line in text_lines(path, "vocabulary file not found")]
        for i, line in enumerate(lines, start=1):
            if len(line.split()) != 1:
                last = "" if line or any(lines[i:]) else " (blank lines at the file's end: remove them)"
                raise DataFormatError(path, i, f"a vocabulary line holds exactly one token, got {line!r}{last}")
        refuse_repeats(path, list(enumerate(lines, start=1)), "token")
        try:
            return cls(lines)
        except ValueError as err:
            raise DataFormatError(path, None, str(err)) from None

    def save(self, path: Path | str) -> None:
        Path(path).write_text("".join(t + "\n" for t in self.itos), encoding="utf-8")

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return self.index(token) is not None

    def index(self, token: str) -> int | None:
        """The token's id, or None; a token typed decomposed (NFD: U + combining diaeresis) finds its composed
        entry (Ü), as the data files are read (:func:`fgdm.data.pt.text_lines`)."""
        idx = self.stoi.get(token)
        return idx if idx is not None or token.isascii() else self.stoi.get(unicodedata.normalize("NFC", token))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def encode(self, tokens: Sequence[str], unknown: Counter[str] | None = None) -> list[int]:
        """Maps tokens to ids; unknown tokens become ``<unk>`` and are counted into ``unknown``."""
        ids = []
        for tok in tokens:
            idx = self.index(tok)
            if idx is None:
                idx = self.unk_index
                if unknown is not None:
                    unknown[tok] += 1
            ids.append(idx)
        return ids

    def encode_all(
        self, sentences: Iterable[Sequence[str]], what: str = "glosses", suggest: bool = False
    ) -> list[list[int]]:
        """Encodes many sentences, each a list of tokens, and warns once, with counts, about unknown tokens; with
        ``suggest`` (glosses typed by hand), the warning offers the closest known token to each one it names.
        Refused, naming the sentence: a token that is no string, is empty, holds a space or a character
        :func:`odd_character` names, or is one of the vocabulary's own (``<pad>``, ``<unk>``, …).
        :meth:`encode_sentence` checks a sentence typed by hand as ``fgdm generate --gloss`` does."""
        unknown: Counter[str] = Counter()
        if isinstance(sentences, str):  # a string is a sequence of characters: each would be taken for a token
            raise ValueError(f"{what}: one string, {sentences!r}: give a list of sentences, each a list of its "
                             f"{what}, e.g. {[sentences.split()]!r}")  # fmt: skip
        sentences = list(sentences)
        if sentences and all(isinstance(s, str) for s in sentences):
            spaced = any(" " in s for s in sentences)  # each string a sentence, or one sentence's tokens
            meant = [s.split() for s in sentences] if spaced else [list(sentences)]
            raise ValueError(f"{what}: a list of strings, {sentences!r}: give a list of sentences, each a list of its "
                             f"{what}, e.g. {meant!r}")  # fmt: skip
        one = next((i for i, s in enumerate(sentences) if isinstance(s, str)), None)
        if one is not None:
            raise ValueError(f"{what}: sentence {one} is one string, {sentences[one]!r}: give its {what} as a list, "
                             f"e.g. {sentences[one].split()!r}")  # fmt: skip
        for i, sentence in enumerate(sentences):
            problem = next((p for tok in sentence if (p := token_problem(tok, what))), None)
            if problem:
                raise ValueError(f"{what}: sentence {i}: {problem}")
        encoded = [self.encode(s, unknown) for s in sentences]
        known = self.itos[len(SPECIALS) :] if suggest else None  # (a vocabulary starts with SPECIALS)
        warn_unknown(unknown, what, sum(len(s) for s in encoded), known)
        return encoded

    def encode_sentence(self, sentence: str | Sequence[str], what: str = "glosses") -> list[int]:
        """The ids of one sentence typed by hand, a string (``"MORGEN NORD REGEN"``) or a list of its glosses,
        checked as ``fgdm generate --gloss`` checks it: refused if empty, with a character :func:`odd_character`
        names, with one of the vocabulary's own tokens, or with no gloss the vocabulary knows (lower-case glosses:
        the error offers them upper case); some unknown ones map to ``<unk>`` with a warning offering the closest
        known gloss. ``what`` names the sentence in errors. For ``generate_poses(loaded, [ids], ...)``."""
        if not isinstance(sentence, Iterable) or isinstance(sentence, (bytes, dict)):
            raise TypeError(f"{what}: a string of glosses or a list of them, got {sentence!r:.60}")
        tokens = gloss_tokens(sentence, what) if isinstance(sentence, str) else list(sentence)
        if not tokens:
            raise ValueError(f"{what}: empty, nothing to sign")
        problem = next((p for tok in tokens if (p := token_problem(tok))), None)
        if problem:
            raise ValueError(f"{what}: {problem}")
        self.require_known(tokens, what)
        unknown: Counter[str] = Counter()
        ids = self.encode(tokens, unknown)
        warn_unknown(unknown, "glosses", len(tokens), self.itos[len(SPECIALS) :], stacklevel=3)  # the caller's line
        return ids

    def require_mostly_known(
        self,
        sentences: Iterable[Sequence[str]],
        what: str,
        limit: float = 0.5,
        why: str = "not the data it was trained on (it would sign <unk> for them)",
        unit: str = "glosses",
    ) -> None:
        """Refuses ``sentences`` more than ``limit`` of whose tokens (``unit``) are not in the vocabulary: data of
        another corpus or language than the model's; ``what`` names them, ``why`` says what that means here."""
        tokens = [t for s in sentences for t in s]
        unknown = sum(t not in self for t in tokens)
        if tokens and unknown > limit * len(tokens):
            share = 100 * unknown / len(tokens)
            raise ValueError(f"{what}: {unknown} of its {len(tokens)} {unit} ({share:.0f} %) are not in the model's "
                             f"vocabulary: {why}")  # fmt: skip

    def require_known(self, tokens: Sequence[str], what: str = "glosses") -> None:
        """Refuses tokens none of which is in the vocabulary (lower-case glosses, say: the hint offers them upper
        case); some unknown ones are left to the encoding's warning. The tokens are glosses already
        (:func:`token_problem`: :meth:`encode_sentence` checks them first)."""
        if not any(t in self for t in tokens):
            upper = any(t.upper() in self for t in tokens)
            hint = f" (did you mean {' '.join(t.upper() for t in tokens)}? glosses are upper case)" if upper else ""
            if not upper and (close := closest(Counter(tokens), self.itos[len(SPECIALS) :])):
                hint = f" (did you mean {close}?)"
            raise ValueError(f"{what}: none of {' '.join(tokens)!r} is in the vocabulary "
                             f"({len(self) - len(SPECIALS)} glosses){hint}")  # fmt: skip

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """Maps ids back to tokens, stopping at ``</s>`` and dropping ``<pad>``/``<s>`` when ``strip``."""
        out = []
        for i in ids:
            tok = self.itos[int(i)]
            if strip and tok == EOS:
                break
            if strip and tok in (PAD, BOS):
                continue
            out.append(tok)
        return out


def closest(unknown: Counter[str], known: Sequence[str]) -> str:
    """'NORD for NORDD, …': the closest known token to each of the ten most frequent unknown ones that has one
    (difflib's ratio ≥ 0.75, of the token as written, in upper case, or spelt as PHOENIX's glosses spell umlauts:
    SUED for SÜD); empty if none has."""
    found = []
    for token, _ in unknown.most_common(10):
        spelt = token.upper().translate(_UMLAUTS)
        match = _closest_one(token, known) or _closest_one(token.upper(), known) or _closest_one(spelt, known)
        found += [f"{match} for {token}"] if match else []
    return ", ".join(found)


_UMLAUTS = str.maketrans({"Ä": "AE", "Ö": "OE", "Ü": "UE", "ß": "SS", "ẞ": "SS"})


def _closest_one(token: str, known: Sequence[str], cutoff: float = 0.75) -> str | None:
    """The known token with the highest difflib ratio ≥ ``cutoff`` to ``token``, the first in ``known`` of those
    tied: a vocabulary lists the most frequent first, so ICH suggests ICH1, not ICH2 (difflib's own
    get_close_matches takes the last in string order)."""
    matcher = difflib.SequenceMatcher(b=token)
    best, best_ratio = None, cutoff
    for candidate in known:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= best_ratio and matcher.quick_ratio() >= best_ratio:
            ratio = matcher.ratio()
            if ratio > best_ratio or (best is None and ratio >= cutoff):
                best, best_ratio = candidate, ratio
    return best


def warn_unknown(
    unknown: Counter[str],
    what: str = "glosses",
    total: int | None = None,
    known: Sequence[str] | None = None,
    stacklevel: int = 3,
) -> None:
    """Warns once about tokens mapped to ``<unk>``, naming the most frequent; ``total``: of how many tokens;
    ``known``: the tokens to suggest from (each named token's closest, by difflib's ratio ≥ 0.75)."""
    if not unknown:
        return
    shown = ", ".join(f"{t} ({c})" for t, c in unknown.most_common(10))
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    if known and (close := closest(unknown, known)):
        more += f"; did you mean {close}?"
    count = sum(unknown.values())
    types = f" ({len(unknown)} type{'s' if len(unknown) > 1 else ''})" if count > 1 else ""
    if count == total and count > 1:  # not "all 2 glosses are not …", which reads as "not all"
        message = f"none of the {count} {what}{types} is in the vocabulary; all map to <unk>"
    else:  # "the only gloss is", "1 of 3 glosses is", "1 gloss is", "2 of 5 glosses are", "2 glosses are"
        some = "the only" if count == total else f"{count}" if total is None else f"{count} of {total}"
        if count == 1 and total in (None, 1):
            what = _singular(what)
        are, maps = ("is", "maps") if count == 1 else ("are", "map")
        message = f"{some} {what}{types} {are} not in the vocabulary and {maps} to <unk>"
    warnings.warn(
        f"{message}: {shown}{more}",
        UnknownTokenWarning,
        stacklevel=stacklevel,
    )
