"""Russian wording shared by the pages, the API's texts and the documents."""

from __future__ import annotations


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun for n: 1 день, 2 дня, 5 дней, 21 день, 11 дней."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many
