"""Give back the resident pages of memory-mapped shard data once a tensor has been joined (Linux).

The shards are opened with ``torch.load(mmap=True)``: reading a tensor faults its pages into the process, and they
stay resident (and counted in its RSS) until the whole file is unmapped at the end. ``madvise(MADV_DONTNEED)`` on
the pages of a joined piece drops them from the process; since the data is never written, the mapping still reads
the file's bytes if touched again (the file stays in the page cache, which the kernel reclaims as it needs).

Only ranges that ``/proc/self/maps`` shows inside a mapping of one of the shard files are released: on anonymous
memory the same call would zero the data. Anywhere else (no /proc, no libc ``madvise``) this does nothing.

Kept because it is measured (``benchmarks/bench_convert.py --writers stream stream-no-release``, a 1.5B-shaped
checkpoint to bfloat16): peak RSS 2.34 GiB with it, 6.62 GiB without (9.63 GiB with verification), the anonymous
part unchanged (1.3 GiB). Page cache is reclaimable, but container memory limits and schedulers that watch RSS
count it, and no library gives resident file pages back early.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import mmap
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

MADV_DONTNEED = 4  # Linux


def _madvise():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


class PageReleaser:
    """Releases pages of tensors that live in file mappings of ``files`` (call after the files are loaded)."""

    def __init__(self, files: list[Path]):
        self._ranges: list[tuple[int, int]] = []
        self._madvise = _madvise() if os.name == "posix" else None
        if self._madvise is None:
            return
        wanted = {str(Path(f).resolve()) for f in files}
        try:
            lines = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5] in wanted:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                self._ranges.append((start, end))
        logger.debug("%d file mappings of %d shard files", len(self._ranges), len(wanted))

    def release(self, tensor: torch.Tensor) -> None:
        """Drop the resident whole pages of ``tensor``'s bytes, if they lie in one shard-file mapping."""
        if not self._ranges or tensor.numel() == 0 or not tensor.is_contiguous():
            return
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        if not any(lo <= start and end <= hi for lo, hi in self._ranges):
            return
        page = mmap.PAGESIZE
        first, last = -(-start // page) * page, end // page * page  # whole pages inside the tensor only
        if last > first and self._madvise(first, last - first, MADV_DONTNEED) != 0:
            logger.debug("madvise failed (errno %d); pages stay resident", ctypes.get_errno())
