"""Scratch folders for benchmark runs, on the project's own filesystem (``benchmarks/.work/``).

The product's default lake lives under the project (``.beazap/lake``); benchmarks keep their lakes
and databases next to it rather than in ``/tmp``, whose file creation was measured 8–40× slower on
our machines (0.2–1.1 ms vs 0.026 ms per new file) — enough to dominate a bronze commit, which
creates two files. ``BENCH_WORK_DIR`` moves the scratch root elsewhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent / ".work"


def scratch_root() -> Path:
    """The folder scratch folders go in (created if missing)."""
    base = Path(os.environ.get("BENCH_WORK_DIR") or ROOT)
    base.mkdir(parents=True, exist_ok=True)
    return base


def scratch_dir(prefix: str) -> Path:
    """A new, empty folder for one run (the caller removes it, or keeps it with ``--keep``)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_root()))
