"""Tests that need a region's standard to differ: a copy of standards/ with one region file changed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import standards

# A region file without quiet hours: the relay tests send family messages at any hour (from 21:00
# Moscow they would wait for the morning).
NO_QUIET_HOURS = "quiet_hours:\n  start: '00:00'\n  end: '00:00'\n"


@contextmanager
def region_standard(tmp_path: Path, region_yaml: str, region: str = "demo") -> Iterator[Path]:
    """Use `region_yaml` as the region's file (nested uses restore the outer one on exit)."""
    directory = tmp_path / "standards"
    if not directory.exists():
        shutil.copytree(
            standards.STANDARDS_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__")
        )
    region_file = directory / "regions" / f"{region}.yaml"
    before = region_file.read_text("utf-8") if region_file.exists() else None
    region_file.write_text(region_yaml, "utf-8")
    previous = standards.current_directory()
    standards.configure(directory)
    standards.load_standard.cache_clear()
    try:
        yield directory
    finally:
        if before is None:
            region_file.unlink()
        else:
            region_file.write_text(before, "utf-8")
        standards.configure(previous)
        standards.load_standard.cache_clear()
