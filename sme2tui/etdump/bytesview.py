"""Bounds-checked little-endian reads at many byte positions at once (numpy gathers over a buffer).

A flatbuffer stores each field at an offset computed from other fields, so decoding a column of a
million events means reading one integer at a million different positions. `ByteView` does that with
one numpy gather per field: an array view whose element i is the integer starting at byte i (stride 1,
so positions need no alignment). Every gather checks its positions against the buffer first and raises
`FlatbufferFormatError` naming the first bad one, so corrupt offsets never read outside the buffer (and
numpy's negative indices never wrap around).
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

Buffer: TypeAlias = bytes | mmap.mmap  # both slice to bytes (names are sliced out of the buffer)



class FlatbufferFormatError(ValueError):
    """The bytes do not follow the flatbuffer layout (an offset or length points outside the buffer)."""


_DTYPES: Final[dict[str, np.dtype[np.integer]]] = {
    code: np.dtype(f"<{code}") for code in ("u2", "u4", "i4", "u8")
}


class ByteView:
    """Gathers of u16/u32/i32/u64 at arbitrary (unaligned) byte positions of one buffer."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self.bytes = np.frombuffer(buffer, dtype=np.uint8)
        self.size = int(self.bytes.size)
        self._views = {
            code: np.ndarray(
                shape=(max(self.size - dtype.itemsize + 1, 0),), dtype=dtype, buffer=self.bytes, strides=(1,)
            )
            for code, dtype in _DTYPES.items()
        }

    def check(self, positions: NDArray[np.int64], width: int, what: str) -> None:
        """Raise unless every `positions[i] .. positions[i] + width` lies inside the buffer."""
        if positions.size == 0:
            return
        bad = (positions < 0) | (positions > self.size - width)
        if bad.any():
            at = int(positions[int(np.argmax(bad))])
            raise FlatbufferFormatError(f"{what} at offset {at} lies outside the file ({self.size} bytes)")

    def read(self, code: str, positions: NDArray[np.int64], what: str) -> NDArray[np.int64]:
        """The integers (as int64; u64 values above 2**63 keep their bits) at `positions`, bounds-checked."""
        self.check(positions, _DTYPES[code].itemsize, what)
        values: NDArray[np.int64] = self._views[code][positions].astype(np.int64, copy=False)
        return values

    def read_u64(self, positions: NDArray[np.int64], what: str) -> NDArray[np.uint64]:
        self.check(positions, 8, what)
        values: NDArray[np.uint64] = self._views["u8"][positions]
        return values

    def scalar(self, code: str, position: int, what: str) -> int:
        return int(self.read(code, np.array([position], dtype=np.int64), what)[0])
