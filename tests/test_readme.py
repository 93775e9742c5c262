"""The README's Python snippets run as written.

The first one is ``examples/quickstart.py``, character for character. Every other
```` ```python ```` block runs on its own in a fresh interpreter (on the memory store); a
block whose fence reads ```` ```python fragment ```` cannot run by itself (it needs code
around it) and is only compiled. Keep those rare.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
QUICKSTART = ROOT / "examples" / "quickstart.py"

_FENCE = re.compile(
    r"^(?P<indent> *)```python(?P<info>[^\n]*)\n(?P<code>.*?)^(?P=indent)```", re.M | re.S
)


@attrs.frozen
class Snippet:
    line: int
    info: str
    code: str


def snippets() -> list[Snippet]:
    text = README.read_text(encoding="utf-8")
    return [
        Snippet(
            line=text.count("\n", 0, match.start()) + 1,
            info=match["info"].strip(),
            code=textwrap.dedent(match["code"]),
        )
        for match in _FENCE.finditer(text)
    ]


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter that imports this checkout's reactor, on the memory
    store (no ``$REACTOR_REDIS_URL``), warnings shown."""
    env = {key: value for key, value in os.environ.items() if key != "REACTOR_REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_first_snippet_is_the_quickstart_example() -> None:
    first = snippets()[0]
    assert first.info == ""
    assert first.code == QUICKSTART.read_text(encoding="utf-8")
    assert ".raise_for_status()" in first.code


@pytest.mark.slow
def test_the_quickstart_runs_as_it_stands(tmp_path: Path) -> None:
    result = run_python(QUICKSTART.read_text(encoding="utf-8"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "paused ['approval']",
        "completed {'charged': 12.5} {'A-1': 2}",
    ]


OTHERS = snippets()[1:]


@pytest.mark.slow
@pytest.mark.parametrize("snippet", OTHERS, ids=[f"README.md:{s.line}" for s in OTHERS])
def test_the_other_snippets_run_on_their_own(snippet: Snippet, tmp_path: Path) -> None:
    if snippet.info == "fragment":
        compile(snippet.code, f"README.md:{snippet.line}", "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return
    assert snippet.info == "", f"unknown fence info {snippet.info!r}: use 'fragment' or nothing"
    result = run_python(snippet.code, tmp_path)
    assert result.returncode == 0, result.stderr


def test_fragments_stay_rare() -> None:
    fragments = [s.line for s in OTHERS if s.info == "fragment"]
    assert len(fragments) <= 1, f"README snippets that cannot run on their own: {fragments}"
    assert len(OTHERS) >= 2
