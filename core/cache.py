"""Values kept per process for a while: lists that every page of a kind reads and that change seldom
(a region's municipalities, its public providers). cachetools' TTL cache behind a lock: requests run
in a thread pool. A kept value may be as old as its `seconds` in another process (an API replica);
the writer's own process forgets it at once (`forget`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from threading import Lock
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_EVERY: list[Kept[object, object]] = []


class Kept(Generic[K, V]):
    def __init__(self, seconds: float, maxsize: int = 64) -> None:
        self._values: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=seconds)
        self._lock = Lock()
        _EVERY.append(self)  # type: ignore[arg-type]

    def get(self, key: K, build: Callable[[], V]) -> V:
        """The kept value, else `build()` kept (built outside the lock: two may build it at once)."""
        with self._lock:
            found = self._values.get(key)
        if found is not None:
            return found
        value = build()
        with self._lock:
            self._values[key] = value
        return value

    def forget(self, key: K | None = None) -> None:
        with self._lock:
            if key is None:
                self._values.clear()
            else:
                self._values.pop(key, None)


def forget_all() -> None:
    """Drops every kept value (tests: a new database reuses the ids the values are kept by)."""
    for kept in _EVERY:
        kept.forget()
