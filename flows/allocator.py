"""glibc malloc settings for the flow process, where one campaign can hold hundreds of MB of typed arrays.

glibc serves a block of at least ``M_MMAP_THRESHOLD`` bytes from its own
mapping, and lets `realloc` grow it in place with `mremap`. But the threshold
is dynamic: each time a mapped block is freed it rises to that block's size
(up to 32 MB). A flow frees multi-MB blocks all the time (numpy temporaries,
snapshot buffers), so its big, growing arrays — contact columns, the id table,
sealed columns — soon live in the heap instead, where every `realloc` that
cannot grow in place moves the array and leaves its old place as a hole. Over
a 1M-contact replay that left ~30 MB of holes (about 30 bytes a contact).
Setting the threshold explicitly fixes it (glibc then stops adjusting it), so
big arrays stay in their own mappings and are returned to the system when
freed. Elsewhere (musl, macOS) there is no `mallopt` and this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value, kept fixed


def keep_big_blocks_mapped(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold; True when it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbols, or not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
