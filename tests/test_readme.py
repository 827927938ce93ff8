"""The README is the front door: every command it shows must exist, with the options it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _inline_commands(prefix: str, min_words: int) -> list[str]:
    """Inline code spans of the README that are commands starting with ``prefix`` and have arguments
    (a bare ``graves write`` in a sentence names the command; it is not an example)."""
    spans = re.findall(r"`([^`\n]+)`", README)
    return sorted({m for m in spans if m.startswith(prefix + " ") and len(_words(m)) >= min_words})


def _words(command: str) -> list[str]:
    """The command's words, without optional parts in [brackets] and without a `< file` redirect."""
    command = re.sub(r"\[[^\]]*\]", " ", command)
    command = re.sub(r"<\s*\S+", " ", command)
    return shlex.split(command)


GRAVES = _inline_commands("graves", 3)
PYTHON = _inline_commands("python", 2)


def test_the_readme_shows_commands():
    assert len(GRAVES) >= 10 and len(PYTHON) >= 4


@pytest.mark.parametrize("command", GRAVES)
def test_each_graves_command_parses(command):
    from graves.cli import build_parser

    words = _words(command)[1:]
    build_parser().parse_args(words)  # an unknown option or choice exits with status 2
    for w in words:
        if w.startswith("configs/"):
            assert (ROOT / w).is_file(), f"{command}: {w} does not exist"


@pytest.mark.parametrize("command", PYTHON)
def test_each_script_exists_with_its_options(command):
    words = _words(command)
    script = ROOT / words[1]
    assert script.is_file(), f"{command}: no {words[1]}"
    source = script.read_text(encoding="utf-8")
    for w in words[2:]:
        if w.startswith("--"):
            assert f'"{w}"' in source, f"{command}: {words[1]} has no option {w}"


def test_the_python_snippet_runs(tmp_path, monkeypatch):
    """The tour's Python line, run as shown (the shipped model; writes out.svg)."""
    snippets = [m for m in re.findall(r"`([^`\n]+)`", README) if m.startswith("import graves")]
    assert snippets
    monkeypatch.chdir(tmp_path)
    for code in snippets:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    assert (tmp_path / "out.svg").read_text().startswith("<?xml")


def test_the_quick_start_commands():
    """Command 1 installs and writes with the shipped model; command 2 is what CI runs."""
    blocks = re.findall(r"```bash\n(.+?)\n```", README, flags=re.S)
    assert len(blocks) >= 2
    write, tests = blocks[0], blocks[1]
    assert "pip install torch==2.13.0" in write and "pip install -e ." in write
    assert re.search(r"graves write \"[^\"]+\" -o \S+\.svg -o \S+\.png$", write)
    assert tests.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci


def test_the_animated_figure_is_the_first_commands_page():
    """docs/figures/hello.svg is what the README says it is: the first command's page (the shipped model,
    seed 0) with --animate. Regenerate it with that command when the model changes."""
    import graves

    words = _words(next(c for c in re.findall(r"```bash\n(.+?)\n```", README, re.S) if "graves write" in c)
                   .split("&& graves ", 1)[1])
    text = words[1]
    figure = (ROOT / "docs" / "figures" / "hello.svg").read_text(encoding="utf-8")
    assert "docs/figures/hello.svg" in README
    from graves.cli import PEN_SPEED
    from graves.render import DEFAULT_PEN_SPEED

    assert PEN_SPEED == DEFAULT_PEN_SPEED  # what --animate means without a number
    assert figure == graves.write(text).svg(animate=DEFAULT_PEN_SPEED)
