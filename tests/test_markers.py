"""``pytest -m "not redis"`` works where no redis-server is installed; the packaging
metadata the first hour trips over (license file, wheel contents)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_not_redis_runs_without_redis_server(tmp_path: Path) -> None:
    # A PATH with this Python only: no redis-server to be found.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir), "PYTHONPATH": str(ROOT)}
    env.pop("REACTOR_REDIS_URL", None)
    modules = ["tests/storage/test_contract.py", "tests/test_cli.py", "tests/test_execution.py"]
    options = ["-q", "-p", "no:cacheprovider", "-m", "not redis"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    counts = re.search(r"(\d+) passed, (\d+) deselected", result.stdout.splitlines()[-1])
    assert counts is not None and int(counts[1]) > 0 and int(counts[2]) > 0


def test_the_license_file_matches_the_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 reactor contributors\n")
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel == {"packages": ["reactor"]}
    assert "reactor[docs]" in project["project"]["optional-dependencies"]["dev"]
