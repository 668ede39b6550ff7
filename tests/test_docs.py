"""README and DESIGN name what the code has: commands, their flags, and files (issue 16).

The command tables are read from each package's ``__main__`` (parsed, not imported); the flags
from each command's own ``--help``. DESIGN.md lives beside the checkout (``../shared``) and is
checked when it is there.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stimuli", "model", "analysis", "experiments")
DOCS = [path for path in (ROOT / "README.md", ROOT / "analysis" / "README.md", ROOT / "participants" / "README.md",
                         ROOT.parent / "shared" / "DESIGN.md") if path.is_file()]
COMMAND = re.compile(r"python -m (stimuli|model|analysis|experiments) ([a-z][a-z-]*)((?:[^`\n|]|\|(?=[a-z]))*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")
DOTTED = re.compile(r"`((?:stimuli|model|analysis|experiments)(?:\.[A-Za-z_]\w*)+)")
FILE_ENDINGS = {"pt", "pth", "py", "yaml", "json", "csv", "tsv", "npz", "png", "html", "h5", "onnx"}
PATH = re.compile(r"(?<![\w./-])((?:stimuli|model|analysis|experiments|benchmarks|tests)/[\w/.-]*\w\.(?:py|yaml))\b")


def command_table(package: str) -> dict[str, str]:
    """verb -> module, read from the package's ``COMMANDS`` table."""
    tree = ast.parse((ROOT / package / "__main__.py").read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) else None
        if target is not None and ast.unparse(target) == "COMMANDS":
            return {verb: module for verb, (module, _) in ast.literal_eval(node.value).items()}
    raise AssertionError(f"{package}/__main__.py has no COMMANDS table")


def documented_commands() -> dict[tuple[str, str], set[str]]:
    """(package, verb) -> the flags the docs show with it."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for doc in DOCS:
        for match in COMMAND.finditer(doc.read_text()):
            found[(match.group(1), match.group(2))] |= set(FLAG.findall(match.group(3)))
    return found


def test_the_docs_are_read():
    commands = documented_commands()
    assert ("model", "train") in commands and "--plan" in commands[("model", "train")]
    assert len(commands) >= 10


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_documented_commands_exist(doc):
    missing = sorted({f"python -m {m.group(1)} {m.group(2)}" for m in COMMAND.finditer(doc.read_text())
                      if m.group(2) not in command_table(m.group(1))})
    assert not missing, f"{doc.name} names commands the code lacks: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_documented_files_exist(doc):
    missing = sorted({path for path in PATH.findall(doc.read_text()) if not (ROOT / path).exists()})
    assert not missing, f"{doc.name} names files the tree lacks: {missing}"


@pytest.mark.slow
def test_documented_flags_are_accepted():
    """Each flag the docs show with a command is in that command's --help."""
    wrong = []
    for (package, verb), flags in sorted(documented_commands().items()):
        if not flags or verb not in command_table(package):
            continue
        result = subprocess.run([sys.executable, "-m", package, verb, "--help"], cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"python -m {package} {verb} --help: {result.stderr[-500:]}"
        wrong += [f"python -m {package} {verb} {flag}" for flag in sorted(flags) if flag not in result.stdout]
    assert not wrong, f"the docs show flags these commands do not take: {wrong}"


def _resolves(dotted: str) -> bool:
    """``pkg.module[.name...]``: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_documented_python_names_exist(doc):
    """Every `pkg.module.name` the docs show can be imported (the display needs a screen: not imported)."""
    names = sorted({name for name in DOTTED.findall(doc.read_text())
                    if not name.startswith("experiments.display") and name.rsplit(".", 1)[1] not in FILE_ENDINGS})
    missing = [name for name in names if not _resolves(name)]
    assert not missing, f"{doc.name} names what the code lacks: {missing}"


def _numpy_sections_missing(path: Path) -> list[str]:
    """Names in a module's ``__all__`` that take or give something their docstring does not list."""
    tree = ast.parse(path.read_text())
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            exported = list(ast.literal_eval(node.value))
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    missing = []
    for name in exported:
        node = defined.get(name)
        if node is None:
            continue
        doc = ast.get_docstring(node) or ""
        if isinstance(node, ast.ClassDef):
            fields = any(isinstance(item, ast.AnnAssign) for item in node.body)
            init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
            if (fields or (init is not None and len(init.args.args) > 1)) and not any(
                    f"{section}\n{'-' * len(section)}" in doc for section in ("Parameters", "Attributes")):
                missing.append(f"{name} (Parameters)")
            continue
        if [a for a in node.args.args + node.args.kwonlyargs if a.arg not in ("self", "cls")] \
                and "Parameters\n----------" not in doc:
            missing.append(f"{name} (Parameters)")
        if node.returns is not None and ast.unparse(node.returns) != "None" \
                and "Returns\n-------" not in doc and "Yields\n------" not in doc:
            missing.append(f"{name} (Returns)")
    return missing


def test_the_numpy_section_check_sees_a_missing_section(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('__all__ = ["f", "g"]\n\ndef f(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n\n\n'
                      'def g(x: int) -> int:\n    """Twice x.\n\n    Parameters\n    ----------\n    x : int\n'
                      '        A number.\n\n    Returns\n    -------\n    int\n        2 x.\n    """\n    return 2 * x\n')
    assert _numpy_sections_missing(module) == ["f (Parameters)", "f (Returns)"]


@pytest.mark.parametrize("package", PACKAGES)
def test_exported_names_have_numpy_parameters_and_returns(package):
    missing = {str(path.relative_to(ROOT)): names for path in sorted((ROOT / package).rglob("*.py"))
               if (names := _numpy_sections_missing(path))}
    assert not missing, f"exported names without numpy Parameters/Returns: {missing}"
