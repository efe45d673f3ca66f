"""A built-in weather-forecast grammar: gloss sentences with German-like translations.

Like PHOENIX14T, glosses are upper-case German sign names in sign order (topic first, time and
place before the predicate) and translations are lower-case German in spoken word order (verb
second), so a back-translator has to reorder, not copy. Sentences are 1–30 glosses long with a
mean near PHOENIX14T's 7.8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (gloss tokens, translation words) pairs for each slot.
TIMES = [
    (["HEUTE"], "heute"), (["MORGEN"], "morgen"), (["UEBERMORGEN"], "übermorgen"),
    (["HEUTE", "NACHT"], "heute nacht"), (["MORGEN", "FRUEH"], "morgen früh"),
    (["WOCHENENDE"], "am wochenende"), (["MONTAG"], "am montag"), (["DIENSTAG"], "am dienstag"),
    (["MITTWOCH"], "am mittwoch"), (["DONNERSTAG"], "am donnerstag"), (["FREITAG"], "am freitag"),
    (["SAMSTAG"], "am samstag"), (["SONNTAG"], "am sonntag"), (["ABEND"], "am abend"),
    (["NACHMITTAG"], "am nachmittag"), (["SPAETER"], "später"),
]  # fmt: skip
REGIONS = [
    (["NORD"], "im norden"), (["SUED"], "im süden"), (["OST"], "im osten"), (["WEST"], "im westen"),
    (["NORD", "WEST"], "im nordwesten"), (["SUED", "OST"], "im südosten"), (["BERG"], "in den bergen"),
    (["KUESTE"], "an der küste"), (["MEER"], "am meer"), (["ALPEN"], "an den alpen"),
    (["REGION"], "regional"), (["UEBERALL"], "überall"), (["MITTE"], "in der mitte"),
    (["FLUSS"], "an den flüssen"), (["BAYERN"], "in bayern"), (["SACHSEN"], "in sachsen"),
]  # fmt: skip
# Weather nouns: gloss, noun, grammatical gender (for the adjective ending).
WEATHER = [
    ("REGEN", "regen", "m"), ("SCHNEE", "schnee", "m"), ("GEWITTER", "gewitter", "n"),
    ("NEBEL", "nebel", "m"), ("WOLKE", "wolken", "p"), ("SONNE", "sonnenschein", "m"),
    ("SCHAUER", "schauer", "p"), ("HAGEL", "hagel", "m"), ("FROST", "frost", "m"),
    ("GLATT", "glätte", "f"), ("STURM", "sturm", "m"), ("NIESEL", "nieselregen", "m"),
]  # fmt: skip
ADJECTIVES = [
    ("STARK", "stark"), ("LEICHT", "leicht"), ("VIEL", "viel"), ("DICHT", "dicht"),
    ("KRAEFTIG", "kräftig"), ("VEREINZELT", "vereinzelt"),
]  # fmt: skip
_ENDING = {"m": "en", "f": "e", "n": "es", "p": "e"}
# Numbers 0 … 30: (gloss, German word).
_NUMBER_PAIRS = [
    ("NULL", "null"), ("EINS", "eins"), ("ZWEI", "zwei"), ("DREI", "drei"), ("VIER", "vier"), ("FUENF", "fünf"),
    ("SECHS", "sechs"), ("SIEBEN", "sieben"), ("ACHT", "acht"), ("NEUN", "neun"), ("ZEHN", "zehn"), ("ELF", "elf"),
    ("ZWOELF", "zwölf"), ("DREIZEHN", "dreizehn"), ("VIERZEHN", "vierzehn"), ("FUENFZEHN", "fünfzehn"),
    ("SECHZEHN", "sechzehn"), ("SIEBZEHN", "siebzehn"), ("ACHTZEHN", "achtzehn"), ("NEUNZEHN", "neunzehn"),
    ("ZWANZIG", "zwanzig"), ("EINUNDZWANZIG", "einundzwanzig"), ("ZWEIUNDZWANZIG", "zweiundzwanzig"),
    ("DREIUNDZWANZIG", "dreiundzwanzig"), ("VIERUNDZWANZIG", "vierundzwanzig"),
    ("FUENFUNDZWANZIG", "fünfundzwanzig"), ("SECHSUNDZWANZIG", "sechsundzwanzig"),
    ("SIEBENUNDZWANZIG", "siebenundzwanzig"), ("ACHTUNDZWANZIG", "achtundzwanzig"),
    ("NEUNUNDZWANZIG", "neunundzwanzig"), ("DREISSIG", "dreißig"),
]  # fmt: skip
NUMBERS = [g for g, _ in _NUMBER_PAIRS]
_NUMBER_WORDS = [w for _, w in _NUMBER_PAIRS]
DIRECTIONS = [("NORD", "nord"), ("SUED", "süd"), ("OST", "ost"), ("WEST", "west")]
WIND_STRENGTH = [
    ("SCHWACH", "schwacher"),
    ("MAESSIG", "mäßiger"),
    ("FRISCH", "frischer"),
    ("STARK", "starker"),
]
MONTHS = [
    ("JANUAR", "januar"), ("FEBRUAR", "februar"), ("MAERZ", "märz"), ("APRIL", "april"), ("MAI", "mai"),
    ("JUNI", "juni"), ("JULI", "juli"), ("AUGUST", "august"), ("SEPTEMBER", "september"),
    ("OKTOBER", "oktober"), ("NOVEMBER", "november"), ("DEZEMBER", "dezember"),
]  # fmt: skip
_WEEKDAYS = TIMES[6:13]


@dataclass(frozen=True)
class Sentence:
    glosses: tuple[str, ...]
    text: str


class WeatherGrammar:
    """Samples weather-forecast sentences; each clause is (glosses, words)."""

    def __init__(self) -> None:
        self._clauses = (
            (self._weather, 0.38), (self._temperature, 0.22), (self._wind, 0.14),
            (self._change, 0.12), (self._intro, 0.07), (self._greeting, 0.07),
        )  # fmt: skip

    def sample(self, rng: np.random.Generator) -> Sentence:
        n_clauses = int(rng.choice([1, 2, 3, 4], p=[0.38, 0.42, 0.15, 0.05]))
        fns, probs = zip(*self._clauses, strict=True)
        glosses: list[str] = []
        words: list[str] = []
        for k in range(n_clauses):
            g, w = fns[int(rng.choice(len(fns), p=np.array(probs) / sum(probs)))](rng)
            if k and rng.random() < 0.3 and w[:1] != ["und"]:  # (the intro's "und nun ..." is joined already)
                g, w = ["UND", *g], ["und", *w]
            glosses += g
            words += w
        return Sentence(tuple(glosses), " ".join(words))

    @staticmethod
    def _pick(rng: np.random.Generator, items: list) -> tuple:
        return items[int(rng.integers(len(items)))]

    def _weather(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        time_g, time_w = self._pick(rng, TIMES) if rng.random() < 0.7 else ([], "")
        reg_g, reg_w = self._pick(rng, REGIONS) if rng.random() < 0.75 else ([], "")
        noun_g, noun_w, gender = self._pick(rng, WEATHER)
        adj_g, adj_w = self._pick(rng, ADJECTIVES) if rng.random() < 0.5 else ("", "")
        adj = [adj_w + _ENDING[gender]] if adj_w else []
        glosses = [*time_g, *reg_g, noun_g, *([adj_g] if adj_g else [])]
        verb = "gibt es"
        if time_w:
            words = [time_w, verb, *([reg_w] if reg_w else []), *adj, noun_w]
        elif reg_w:
            words = [reg_w, verb, *adj, noun_w]
        else:
            words = ["es", "gibt", *adj, noun_w]
        return glosses, " ".join(words).split()

    def _temperature(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        reg_g, reg_w = self._pick(rng, REGIONS) if rng.random() < 0.6 else ([], "")
        lo = int(rng.integers(0, 25))
        hi = int(min(lo + rng.integers(2, 9), 30))
        minus = rng.random() < 0.2
        sign_g, sign_w = (["MINUS"], ["minus"]) if minus else ([], [])
        if rng.random() < 0.5:
            glosses = ["TEMPERATUR", *reg_g, *sign_g, NUMBERS[lo], "BIS", NUMBERS[hi], "GRAD"]
            words = [
                "die",
                "temperaturen",
                "liegen",
                *reg_w.split(),
                "zwischen",
                *sign_w,
                _NUMBER_WORDS[lo],
                "und",
                _NUMBER_WORDS[hi],
                "grad",
            ]
        else:
            glosses = [
                *reg_g,
                "TEMPERATUR",
                *sign_g,
                NUMBERS[hi],
                "GRAD",
                *(["MAXIMAL"] if rng.random() < 0.5 else []),
            ]
            words = [*reg_w.split(), "werden", "höchstens", *sign_w, _NUMBER_WORDS[hi], "grad", "erreicht"]
            if not reg_w:
                words = ["es", *words]
        return glosses, words

    def _wind(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        d_g, d_w = self._pick(rng, DIRECTIONS)
        s_g, s_w = self._pick(rng, WIND_STRENGTH)
        if rng.random() < 0.4:
            d2_g, d2_w = self._pick(rng, [d for d in DIRECTIONS if d[0] != d_g])
            d_g, d_w = f"{d_g} {d2_g}", d_w + d2_w
        glosses = ["WIND", *d_g.split(), s_g]
        return glosses, ["dazu", "weht", "ein", s_w, "wind", "aus", d_w]

    def _change(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        t_g, t_w = self._pick(rng, TIMES)
        a_g, a_w = self._pick(
            rng,
            [
                ("WECHSELHAFT", "wechselhaft"),
                ("FREUNDLICH", "freundlich"),
                ("KALT", "kalt"),
                ("WARM", "warm"),
                ("MILD", "mild"),
                ("TRUEB", "trüb"),
            ],
        )
        if rng.random() < 0.5:
            return [*t_g, "WETTER", a_g], [*t_w.split(), "wird", "das", "wetter", a_w]
        more = {"kalt": "kälter", "warm": "wärmer"}.get(a_w, a_w + "er")  # the comparative, umlaut and all
        return [*t_g, "MEHR", a_g], [*t_w.split(), "wird", "es", "etwas", more]

    def _intro(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        d_g, d_w = self._pick(rng, _WEEKDAYS)
        day = int(rng.integers(1, 29))
        m_g, m_w = self._pick(rng, MONTHS)
        glosses = ["JETZT", "WETTER", "MORGEN", *d_g, NUMBERS[day], m_g]
        words = [
            "und",
            "nun",
            "die",
            "wettervorhersage",
            "für",
            "morgen",
            d_w.split()[-1],
            "den",
            _ordinal(day),
            m_w,
        ]
        return glosses, words

    def _greeting(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        if rng.random() < 0.5:
            return ["GUT", "ABEND", "LIEB", "ZUSCHAUER"], ["guten", "abend", "liebe", "zuschauer"]
        return ["TSCHUESS", "SCHOEN", "ABEND"], ["ich", "wünsche", "ihnen", "einen", "schönen", "abend"]


def _ordinal(n: int) -> str:
    word = _NUMBER_WORDS[n]
    special = {1: "ersten", 3: "dritten", 7: "siebten", 8: "achten"}
    if n in special:
        return special[n]
    return word + ("sten" if n >= 20 else "ten")
