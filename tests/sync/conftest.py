"""Settings for the synchronizer tests."""

from __future__ import annotations


def pytest_configure(config):
    # Also listed in pyproject.toml; registered here so `pytest tests/sync` alone never warns.
    config.addinivalue_line("markers", "jit: kernel-level test rerun with NUMBA_DISABLE_JIT=1 (Makefile)")
