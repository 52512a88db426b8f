"""Households kept packed: a district's list held in a fifth of the memory.

A :class:`Household` with its :class:`Recipient` is some 900 bytes of Python
objects; 100,000 of them, held from the check to the manifest, were the larger
part of a build's memory, and grew with the list. :class:`Packed` keeps them
pickled, a block of :data:`BLOCK` households at a time (texts repeated in a
block are kept once), and gives them back one block at a time as the stages
walk the list in delivery order; :meth:`Packed.spilled` moves the blocks to an
unnamed temporary file, so that only where each block lies stays in memory.
:class:`Coded` is the same list with the codes the ledger gave, made into
``code`` and ``url`` only when a household is read.

Both are read-only sequences (:class:`Lazy`: ``len``, index, slice (a list) and
iteration), like the tuple they stand for.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import threading
from abc import abstractmethod
from array import array
from typing import Iterable, Iterator, List, Sequence, Tuple, TypeVar, Union, overload

from letterpress.models import Household

#: Households per pickled block.
BLOCK = 256

T = TypeVar("T")


class Lazy(Sequence[T]):
    """A read-only list whose items are made when read: ``_one(i)`` gives one; slices
    are lists."""

    @abstractmethod
    def _one(self, index: int) -> T:
        """The item at ``index`` (0 <= index < len)."""

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> List[T]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[T, List[T]]:
        if isinstance(index, slice):
            return [self._one(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("index out of range")
        return self._one(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_Households = Lazy[Household]


class Packed(_Households):
    """``households`` pickled in blocks; the block read last by index is kept decoded
    (iterating decodes each block once, for that walk alone)."""

    def __init__(self, blocks: Sequence[bytes], count: int) -> None:
        self._blocks: Sequence[bytes] = blocks if isinstance(blocks, _Spool) else tuple(blocks)
        self._count = count
        self._last: Tuple[int, List[Household]] = (-1, [])

    @classmethod
    def of(cls, households: Iterable[Household]) -> "Packed":
        blocks: List[bytes] = []
        block: List[Household] = []
        count = 0
        for h in households:
            block.append(h)
            count += 1
            if len(block) == BLOCK:
                blocks.append(pickle.dumps(block, pickle.HIGHEST_PROTOCOL))
                block = []
        if block:
            blocks.append(pickle.dumps(block, pickle.HIGHEST_PROTOCOL))
        return cls(blocks, count)

    def spilled(self) -> "Packed":
        """The same households with their blocks in an unnamed temporary file instead of
        memory (itself when the file cannot be written: a full disk, no temp folder)."""
        if isinstance(self._blocks, _Spool):
            return self
        try:
            return Packed(_Spool(self._blocks), self._count)
        except OSError:
            return self

    def __reduce__(self):
        return (Packed, (tuple(self._blocks), self._count))

    def __len__(self) -> int:
        return self._count

    def _block(self, k: int) -> List[Household]:
        last = self._last
        if last[0] != k:
            last = (k, pickle.loads(self._blocks[k]))
            self._last = last
        return last[1]

    def _one(self, index: int) -> Household:
        return self._block(index // BLOCK)[index % BLOCK]

    def __iter__(self) -> Iterator[Household]:
        # blocks of its own: two threads walking the list (slips, run sheets) do not
        # take each other's block away
        for block in self._blocks:
            yield from pickle.loads(block)


class _Spool(Lazy[bytes]):
    """Blocks in an unnamed temporary file (gone with the process, whatever ends it): only
    where each block lies is held here."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._file = tempfile.TemporaryFile()
        self._lock = threading.Lock()       # slips and run sheets read from two threads
        self._spans = array("q")
        at = 0
        try:
            for block in blocks:
                self._file.write(block)
                self._spans.extend((at, len(block)))
                at += len(block)
            self._file.flush()
        except BaseException:
            self._file.close()
            raise

    def __len__(self) -> int:
        return len(self._spans) // 2

    def _one(self, k: int) -> bytes:
        at, size = self._spans[2 * k], self._spans[2 * k + 1]
        if hasattr(os, "pread"):    # at a place, not the file's position: no lock needed
            return os.pread(self._file.fileno(), size, at)
        with self._lock:
            self._file.seek(at)
            return self._file.read(size)


class Coded(_Households):
    """``households`` with their codes: ``codes[i]`` (canonical) is the code of
    ``households[i]``; its printed form and URL are made when it is read."""

    def __init__(self, households: Sequence[Household], codes: Sequence[str],
                 base_url: str) -> None:
        if len(households) != len(codes):
            raise ValueError("one code per household")
        from letterpress.ledger import codes as codes_mod

        self._households, self._base_url = households, base_url
        self._count = len(codes)
        # codes of one length (the ledger's all are) in one text: 11 bytes a code, not 68
        joined = "".join(codes)
        self._listed: Tuple[str, ...] = ()
        if joined.isascii() and len(joined) == codes_mod.LENGTH * self._count:
            self._joined, self._width = joined, codes_mod.LENGTH
        else:
            self._joined, self._listed, self._width = "", tuple(codes), 0
        self._printed = codes_mod.printed_canonical
        self._url_for = codes_mod.url_for_canonical

    def _code(self, index: int) -> str:
        w = self._width
        return self._joined[index * w:(index + 1) * w] if w else self._listed[index]

    def _coded(self, h: Household, code: str) -> Household:
        return h.with_code(self._printed(code), self._url_for(self._base_url, code))

    def __len__(self) -> int:
        return self._count

    def _one(self, index: int) -> Household:
        return self._coded(self._households[index], self._code(index))

    def __iter__(self) -> Iterator[Household]:
        for index, h in enumerate(self._households):
            yield self._coded(h, self._code(index))
