"""Restarting a command so that glibc's malloc asks for transparent huge pages.

The command line and the side-by-side benchmark call it first thing, so every
process they start (benchmark workers included, PyTorch's too) inherits it.
"""

import os
import sys


def restart_with_huge_pages() -> None:
  """Re-executes this command once with the `glibc.malloc.hugetlb` tunable set.

  glibc's malloc asks the kernel for transparent huge pages for its large
  blocks only when that tunable is set at process start. With the kernel's
  THP mode at `madvise`, fewer TLB misses on the step's large buffers made the
  base train step 1.12x faster on 2 CPU cores in the committed benchmark
  (review/REVIEW.md), 0.99-1.30x across runs (review/MEASUREMENTS.md).
  Setting the tunable yourself (`=0` to refuse) skips the restart.
  """
  tunables = os.environ.get('GLIBC_TUNABLES', '')
  if 'glibc.malloc.hugetlb' in tunables or not sys.platform.startswith('linux'):
    return
  os.environ['GLIBC_TUNABLES'] = ':'.join(
      filter(None, [tunables, 'glibc.malloc.hugetlb=1']))
  os.execv(sys.executable, sys.orig_argv)
