"""flows.allocator: with the mmap threshold fixed, a big block stays in its own mapping even after a
bigger one was freed (glibc would otherwise raise the threshold and put it in the heap)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

PROBE = r"""
import ctypes, sys
sys.path.insert(0, {root!r})
from flows.allocator import keep_big_blocks_mapped
fixed = {fixed} and keep_big_blocks_mapped()
big = bytearray(16 << 20); del big          # freeing a mapped 16 MB block raises a dynamic threshold
block = bytearray(2 << 20)
addr = ctypes.addressof((ctypes.c_char * 1).from_buffer(block))
for line in open("/proc/self/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if lo <= addr < hi:
        print(fixed, "heap" if line.rstrip().endswith("[heap]") else "mapped")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_big_blocks_stay_mapped_once_the_threshold_is_fixed():
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)

    def where(fixed: bool) -> str:
        out = subprocess.run([sys.executable, "-c", PROBE.format(root=root, fixed=fixed)], capture_output=True,
                             text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()
        return " ".join(out)

    if where(False) != "False heap":  # this C library does not move such a block to the heap anyway
        pytest.skip("the probe shows no difference on this C library")
    assert where(True) == "True mapped"
