"""Argument types that refuse, at parsing, a value no one can mean (a batch of -1, a rate of NaN): the ``fgdm``
command's and the benchmark scripts'. Plain Python: the parser imports no torch."""

from __future__ import annotations

import argparse
import math

BATCH_SIZE = 32  # sequences sampled (generate --split) or back-translated (evaluate) at once, unless --batch-size


def number(convert, within, expected: str):
    """An argparse type: ``convert(text)`` where ``within`` holds of it, else "expected ``expected``"."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not within(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number(int, lambda n: n >= 1, "a whole number ≥ 1")
count = number(int, lambda n: n >= 0, "a whole number ≥ 0")  # e.g. how many to render
seed = number(int, lambda n: 0 <= n < 2**63, "a whole number from 0 to 2**63 - 1")  # what torch's generators take
positive_rate = number(float, lambda x: 0 < x < math.inf, "frames per second > 0")  # NaN fails both
positive = number(float, lambda x: 0 < x < math.inf, "a number > 0")
nonnegative = number(float, lambda x: 0 <= x < math.inf, "a number ≥ 0")
probability = number(float, lambda x: 0 <= x <= 1, "a number from 0 to 1")
