"""GBNF for a JSON integer within bounds (`minimum` / `maximum` of an integer schema).

llama-cpp-python's schema converter writes any integer for `{"type": "integer", "minimum": 1}`,
so a tool's `page: 0` broke its own schema. Digit strings of one length compare like numbers, so
a range splits into one range per length, each written digit by digit (as regex generators for
numeric ranges do). JSON integers have no leading zeros and at most 16 digits here, as the
converter's own integer rule.
"""

from __future__ import annotations

MAX_DIGITS = 16
_TOP = 10**MAX_DIGITS - 1


def _digits(count: int) -> str:
    # Spelled out: llama.cpp refuses `x{n}` in a grammar with many rules (it multiplies the rule
    # count by n against a fixed threshold), and a request's tools make many rules.
    return " ".join(["[0-9]"] * count)


def _digit(low: int, high: int) -> str:
    return f'"{low}"' if low == high else f"[{low}-{high}]"


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives for the digit strings from `low` to `high` (equal lengths, low <= high)."""
    if not low:
        return [""]
    if low == high:
        return [f'"{low}"']
    prefix = 0
    while low[prefix] == high[prefix]:
        prefix += 1
    head = f'"{low[:prefix]}" ' if prefix else ""
    a, b, rest = int(low[prefix]), int(high[prefix]), len(low) - prefix - 1
    if rest == 0:
        return [f"{head}{_digit(a, b)}"]
    lower_tail = " | ".join(_same_length(low[prefix + 1 :], "9" * rest))
    upper_tail = " | ".join(_same_length("0" * rest, high[prefix + 1 :]))
    out = [f'{head}"{a}" ({lower_tail})']
    if a + 1 <= b - 1:
        out.append(f"{head}{_digit(a + 1, b - 1)} {_digits(rest)}")
    out.append(f'{head}"{b}" ({upper_tail})')
    return out


def _non_negative(low: int, high: int) -> list[str]:
    """Alternatives for the integers low..high (0 <= low <= high <= _TOP), without leading zeros."""
    out: list[str] = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = 0 if digits == 1 else 10 ** (digits - 1)
        last = 10**digits - 1
        a, b = max(low, first), min(high, last)
        if a > b:
            continue
        if a == first and b == last and digits > 1:
            out.append(f"[1-9] {_digits(digits - 1)}")  # every number of this length
        else:
            out.extend(_same_length(str(a), str(b)))
    return out


def integer_rule(minimum: int | None, maximum: int | None) -> str:
    """A GBNF expression (without trailing space) for the JSON integers in [minimum, maximum]."""
    low = -_TOP if minimum is None else max(minimum, -_TOP)
    high = _TOP if maximum is None else min(maximum, _TOP)
    if low > high:
        raise ValueError(f"no integer lies between {minimum} and {maximum}")
    branches: list[str] = []
    if low < 0:
        # Negative numbers: a minus sign, then the magnitudes from |min(high, -1)| to |low|.
        magnitudes = _non_negative(max(1, -high), -low)
        branches.append(f'"-" ({" | ".join(magnitudes)})')
    if high >= 0:
        branches.extend(_non_negative(max(low, 0), high))
    return "(" + " | ".join(f"({b})" for b in branches) + ")"
