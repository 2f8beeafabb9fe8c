"""Every example in README.md runs as written, so a newcomer copying one never meets a stale flag.

The ```bash/```sh/```shell and ```python blocks are run in document order in one empty folder
(later examples use the folders earlier ones wrote), with ``PYTHONPATH`` at the repository so
``python -m vaelab`` works: shell blocks line by line, python blocks as scripts, each in its own
process. Not run, with the reason printed:

- a block right after ``<!-- not run by tests: REASON -->``;
- a block that mentions MNIST when MNIST is not on this machine (``tests/conftest.py``);
- ``pip install`` lines and ``python app.py`` (they install packages or start a server).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT, mnist_dir

README = ROOT / "README.md"
SHELL, PYTHON = ("bash", "sh", "shell"), ("python", "py")
LINE_TIMEOUT_S = 300  # one command; the examples themselves take seconds
BLOCK = re.compile(r"(?:<!--\s*not run by tests:\s*(?P<reason>.*?)\s*-->\s*\n)?"
                   r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN_LINES = [(re.compile(r"^pip3? install\b"), "installs packages"),
                 (re.compile(r"\bpython3? app\.py\b"), "starts the app's web server")]


@dataclass(frozen=True)
class Block:
    line: int  # line of the opening fence in README.md (1-based)
    lang: str  # fence language: one of SHELL or PYTHON
    body: str  # the code as written
    not_run: str | None  # reason given by a "not run by tests" comment, else None

    @property
    def id(self) -> str:
        return f"README.md:{self.line}-{self.lang}"


def readme_blocks(text: str) -> list[Block]:
    """The shell and python code blocks of ``text``, in document order."""
    return [Block(text.count("\n", 0, m.start("lang")) + 1, m["lang"], m["body"], m["reason"])
            for m in BLOCK.finditer(text) if m["lang"] in SHELL + PYTHON]


def shell_commands(body: str) -> list[str]:
    """Logical command lines: continuations (trailing backslash) joined, blanks and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


BLOCKS = readme_blocks(README.read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One empty folder shared by all blocks, in order."""
    return tmp_path_factory.mktemp("readme")


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}  # the examples' models are small; one thread each avoids contention
    where = mnist_dir()
    if where is not None:
        env["VAELAB_DATA"] = str(where)
    return env


def run(command: list[str] | str, cwd: Path, what: str) -> None:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=environment(), shell=isinstance(command, str),
                          executable="/bin/bash" if isinstance(command, str) else None,
                          capture_output=True, text=True, timeout=LINE_TIMEOUT_S)
    print(f"{time.perf_counter() - start:6.1f}s  {what}")
    assert done.returncode == 0, (f"{what}\nexited with {done.returncode}\n"
                                  f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


def test_the_readme_has_examples_to_run():
    ran = [b for b in BLOCKS if b.not_run is None]
    assert any(b.lang in PYTHON for b in ran) and any(b.lang in SHELL for b in ran)
    commands = " ".join(" ".join(shell_commands(b.body)) for b in ran if b.lang in SHELL)
    assert "vaelab train-prior" in commands and "vaelab sample" in commands


def test_marked_blocks_give_a_reason():
    assert all(b.not_run for b in BLOCKS if b.not_run is not None)
    text = README.read_text()
    assert text.count("not run by tests:") == sum(b.not_run is not None for b in BLOCKS), \
        "a 'not run by tests' comment must sit right above a shell or python block"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_example_runs_as_written(block, workdir):
    if block.not_run is not None:
        pytest.skip(f"{block.id}: not run by tests: {block.not_run}")
    if re.search(r"mnist", block.body, re.I) and mnist_dir() is None:
        pytest.skip(f"{block.id} needs MNIST: set VAELAB_DATA to a folder holding MNIST/raw/")
    if block.lang in PYTHON:
        script = workdir / f"readme_{block.line}.py"
        script.write_text(block.body)
        run([sys.executable, script.name], workdir, f"{block.id} (python block)")
        return
    skipped = []
    for command in shell_commands(block.body):
        reason = next((why for pattern, why in NOT_RUN_LINES if pattern.search(command)), None)
        if reason:
            skipped.append(f"{command!r} ({reason})")
            continue
        run(command, workdir, command)
    if skipped:
        print(f"{block.id}: not run: {'; '.join(skipped)}")
