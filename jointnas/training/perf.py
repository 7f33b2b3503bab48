"""Process-level CPU performance knobs for training many small models.

Training a small MBConv net on a CPU allocates and frees many short-lived, mid-sized tensors per
step. With glibc's default malloc, buffers above the dynamic mmap threshold go straight to
``mmap``/``munmap`` and freed heap tops are trimmed back to the OS, so every step pays page faults
and zeroing for memory it just gave back: DESIGN.md measured glibc malloc dominating small-model
CPU training, with tcmalloc or ``mallopt`` tuning giving 1.4-2x. ``tune_malloc`` applies the
``mallopt`` half of that without an ``LD_PRELOAD``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc <malloc.h> parameter numbers
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

_MIB = 1 << 20
_tuned = False


def tune_malloc(threshold: int = 256 * _MIB) -> bool:
    """Keep freed memory in the process: raise glibc's mmap and trim thresholds to ``threshold``
    bytes, so allocations up to that size are served from the heap and reused across steps.

    Affects the whole process and cannot be undone meaningfully, so call it once, early (a CLI or
    a study script, not a library import). Returns True when glibc accepted the settings, False
    where ``mallopt`` is unavailable (macOS, Windows, musl) or refused them.
    """
    global _tuned
    if _tuned:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, threshold) == 1 and mallopt(M_TRIM_THRESHOLD, threshold) == 1
    _tuned = ok
    return ok
