"""The last few results of a slow computation, kept by key: the lesson's trained copies and open questions, a data
file's packed sequences."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class Remembered:
    """The last `size` results of a slow computation, by key, the least recently used dropped first (thread-safe)."""

    def __init__(self, size: int):
        self.size, self._lock = size, threading.Lock()
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key, compute: Callable):
        """The remembered result for `key`, computing it first if it is not there."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
