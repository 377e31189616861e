"""The table of distinct strings of an ETDump: every event's name becomes an id, each name is decoded once.

A trace repeats a few hundred names millions of times (one copy per event in the file: flatcc does not
share strings), so turning strings into ids is the one per-event step that cannot be a plain gather.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import numpy as np

from sme2tui.etdump.bytesview import Buffer, ByteView, FlatbufferFormatError
from sme2tui.etdump.kinds import KIND_CODES, kind_of_name

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Strings up to this long are grouped with numpy before the dict lookup (Names.ids).
VECTOR_BYTES: Final = 96
_HASH_MULTIPLIER: Final = np.uint64(0x9E3779B97F4A7C15)
_WORD_MASKS: Final = np.array([(1 << (8 * size)) - 1 for size in range(9)], dtype=np.uint64)


class Names:
    """Distinct strings seen in the file, each decoded once, with the event kind its name implies."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.kinds: list[int] = []
        self._ids = _Interned(self)

    def id_of(self, raw: bytes) -> int:
        return self._ids[raw]

    def add(self, raw: bytes) -> int:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FlatbufferFormatError("a name is not valid UTF-8") from None
        self.texts.append(text)
        self.kinds.append(KIND_CODES[kind_of_name(text)])
        return len(self.texts) - 1

    def ids(self, view: ByteView, starts: NDArray[np.int64], ends: NDArray[np.int64]) -> NDArray[np.int32]:
        """Id of each string `view.buffer[starts[i]:ends[i]]`.

        Names repeat every iteration, so strings up to VECTOR_BYTES long are grouped with numpy first: each
        is read as 8-byte words, keyed by a hash of its words, and every string is checked word for word
        against the first string of its group (so a hash collision can never merge two names; it only
        sends those strings down the exact path). Only one string per group is looked up in the dict.
        """
        ids = np.empty(starts.size, dtype=np.int32)
        lengths = ends - starts
        short = lengths <= VECTOR_BYTES
        if not short.all():
            ids[~short] = self._lookup(view.buffer, starts[~short], ends[~short])
        if short.any():
            ids[short] = self._grouped(view, starts[short], lengths[short])
        return ids

    def _grouped(self, view: ByteView, starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int32]:
        words = _words(view, starts, lengths)
        key = lengths.astype(np.uint64)
        for row in words:
            key = key * _HASH_MULTIPLIER + row  # wraps around (uint64), as intended
        _, first, group = np.unique(key, return_index=True, return_inverse=True)
        representative = first[group]
        exact = (lengths == lengths[representative]) & (words == words[:, representative]).all(axis=0)
        ids = self._lookup(view.buffer, starts[first], starts[first] + lengths[first])[group]
        if not exact.all():
            odd = ~exact
            ids[odd] = self._lookup(view.buffer, starts[odd], starts[odd] + lengths[odd])
        return ids

    def _lookup(self, buffer: Buffer, starts: NDArray[np.int64], ends: NDArray[np.int64]) -> NDArray[np.int32]:
        """The exact path: slicing, hashing and lookup all run in C (a dict subclass's __getitem__);
        Python code runs only for a name not seen before."""
        get: Callable[[slice], bytes] = buffer.__getitem__  # bytes and mmap slices are bytes
        return np.fromiter(map(self._ids.__getitem__, map(get, map(slice, starts.tolist(), ends.tolist()))),
                           dtype=np.int32, count=starts.size)


def _words(view: ByteView, starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.uint64]:
    """Each string's bytes as little-endian 8-byte words (one row per word), zero past its end."""
    count = int(lengths.max()) // 8 + 1 if lengths.size else 0
    words = np.zeros((count, lengths.size), dtype=np.uint64)
    for index in range(count):
        valid = np.clip(lengths - 8 * index, 0, 8)
        live = valid > 0
        at = starts[live] + 8 * index
        # The last word of a string near the end of the file is read from 8 bytes before the end and
        # shifted down; the string's own bytes are always inside the file.
        shift = np.maximum(at + 8 - view.size, 0)
        raw = view.read_u64(at - shift, "a string") >> (8 * shift).astype(np.uint64)
        words[index, live] = raw & _WORD_MASKS[valid[live]]
    return words


class _Interned(dict[bytes, int]):
    def __init__(self, names: Names) -> None:
        super().__init__()
        self._names = names

    def __missing__(self, raw: bytes) -> int:
        index = self[raw] = self._names.add(raw)
        return index
