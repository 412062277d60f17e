"""Every script the tests run (tests/**/scripts/) and every example compiles.

The end-to-end tests copy these files and run them under mpigroup; a syntax
error would only show up as a failed run minutes later. Here it fails at once.
"""
from pathlib import Path

from helpers import REPO

TESTS = REPO / "tests"
SCRIPT_DIRS = sorted(p for p in TESTS.rglob("scripts") if p.is_dir() and "__pycache__" not in p.parts)
EXAMPLES = REPO / "examples"


def _sources() -> list[Path]:
    files = [f for d in SCRIPT_DIRS for f in d.rglob("*.py")] + list(EXAMPLES.rglob("*.py"))
    return sorted(f for f in files if "__pycache__" not in f.parts)


def test_every_scripts_folder_holds_scripts():
    assert TESTS / "e2e" / "scripts" in SCRIPT_DIRS and TESTS / "cluster" / "scripts" in SCRIPT_DIRS
    empty = [str(d.relative_to(REPO)) for d in SCRIPT_DIRS if not any(d.rglob("*.py"))]
    assert not empty, f"scripts folders without a script: {empty}"
    assert any(EXAMPLES.rglob("*.py")), "examples/ holds no Python file"


def test_every_script_and_example_compiles():
    sources = _sources()
    assert sources
    errors = []
    for path in sources:
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # ValueError: a null byte in the source
            errors.append(f"{path.relative_to(REPO)}: {exc}")
    assert not errors, "\n".join(errors)
