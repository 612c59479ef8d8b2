"""The dependency rule of DESIGN.md ("Layout", "Dependency rule", ``RULE`` below), enforced.

- Every ``import`` statement counts (module top, function-local, ``if TYPE_CHECKING:``);
  relative imports are resolved. ``from privaudit.x import y`` imports ``privaudit.x.y`` when
  ``privaudit/x/y.py`` or ``privaudit/x/y/`` exists, else ``privaudit.x``. Imports spelt as
  strings (``importlib.import_module("...")``) are not seen.
- A package's ``__init__.py`` counts as that package; ``privaudit/__init__.py`` and
  ``__main__.py`` are the top (they may import anything, nothing may import them).
- Imports inside one top-level package are allowed, except in mechanisms, whose sub-packages
  are layered; peers of one level (data and model; dp and secagg) may not import each other.
  A module directly in ``mechanisms/`` counts as model; ``mechanisms/__init__.py`` sits above
  all of mechanisms (it may import any of it, no mechanisms module may import it).
- A module outside the layout (``privaudit/x.py``, ``mechanisms/other/``) is unplaced: every
  privaudit import from or to it is a violation.
- Cycles: a node per module file, an edge per import of an existing module (a package: its
  ``__init__.py``), none from inside ``privaudit.p`` to package ``privaudit.p`` (its lazy public
  API: else every re-exporting ``__init__`` would be a cycle with its own submodules).
- Sizes: a module's physical lines; a function's from its ``def`` line to its last line
  (decorators excluded), named ``path::Class.method`` (nested: ``outer.inner``).

The debt is ``tests/architecture_allowlist.py``; it may only shrink (a test fails on a new entry
and on a stale one). Regenerate: ``python -m tests.test_architecture --write-allowlist``.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "privaudit"
ALLOWLIST_FILE = Path(__file__).with_name("architecture_allowlist.py")

ORDER = ("core", "mechanisms", "attacks", "unlearning", "reports", "gate", "audit", "testing")
MECHANISMS_RANK = {"data": 0, "model": 0, "dp": 1, "secagg": 1, "federated": 2, "flower": 3}
MECHANISMS_ROOT_RANK = 9
TOP = frozenset({"privaudit", "privaudit.__main__"})
BLOCKED_AT_RUNTIME = ("torch", "transformers", "opacus", "peft", "tenseal")
ML_LIBRARIES = {*BLOCKED_AT_RUNTIME, "flwr", "sklearn", "scipy", "matplotlib", "numpy"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
RULE = (
    "A module imports its own sub-package and packages to its left only:\n"
    "    core < mechanisms < attacks < unlearning < reports < gate < audit < testing\n"
    "inside mechanisms: data, model < dp, secagg < federated < federated/flower (peers do not\n"
    "import each other; modules directly in mechanisms/ count as model). privaudit/__init__.py\n"
    "and __main__.py are the top; core imports no ML library (numpy included). Every import\n"
    "counts: module top, function-local and TYPE_CHECKING (DESIGN.md, Dependency rule)."
)


class Import(NamedTuple):
    target: str  # resolved dotted name
    line: int


class Place(NamedTuple):
    rank: int  # index in ORDER
    group: str  # the sub-package that layers inside mechanisms, else the package
    sub: int  # rank inside mechanisms, else 0


@cache
def _modules() -> dict[str, Path]:
    """Every module under privaudit/ by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _exists(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or base.is_dir()


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(name: str, path: Path) -> list[Import]:
    """Every import of one module, resolved to dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = alias.name != "*" and base.split(".")[0] == "privaudit"
                target = candidate if is_module and _exists(candidate) else base
                found.append(Import(target, node.lineno))
    return found


def _place(name: str) -> Place | None:
    """Where a privaudit module sits in the layering; None outside the layout (or the top)."""
    parts = name.split(".")
    if name in TOP or len(parts) < 2 or parts[1] not in ORDER:
        return None
    rank = ORDER.index(parts[1])
    if parts[1] != "mechanisms":
        return Place(rank, parts[1], 0)
    if len(parts) == 2:
        return Place(rank, "mechanisms", MECHANISMS_ROOT_RANK)
    if not (PACKAGE / "mechanisms" / parts[2]).is_dir():
        return Place(rank, "model", MECHANISMS_RANK["model"])  # directly in mechanisms/
    group = "flower" if parts[2:4] == ["federated", "flower"] else parts[2]
    return Place(rank, group, MECHANISMS_RANK[group]) if group in MECHANISMS_RANK else None


def _allowed(importer: str, imported: str) -> bool:
    if importer in TOP:
        return True
    src, dst = _place(importer), _place(imported)
    if src is None or dst is None:
        return False
    if src.rank != dst.rank:
        return src.rank > dst.rank
    return src.group == dst.group or src.sub > dst.sub


def _violations() -> dict[str, set[str]]:
    """'importer -> imported' with the places ('path:line') where it happens."""
    found: dict[str, set[str]] = {}
    for name, path in _modules().items():
        in_core = name.split(".")[1:2] == ["core"]
        for imp in _imports(name, path):
            top = imp.target.split(".")[0]
            if top == "privaudit":
                if imp.target == name or _allowed(name, imp.target):
                    continue
                key = f"{name} -> {imp.target}"
            elif in_core and top in ML_LIBRARIES:
                key = f"{name} -> {top}"
            else:
                continue
            found.setdefault(key, set()).add(f"{path.relative_to(ROOT)}:{imp.line}")
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in _imports(name, path):
            target = imp.target
            inside = name.startswith(target + ".")  # the package's own public API
            if target in modules and target != name and not inside:
                graph[name].add(target)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm, iterative; the components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []
    work: list[tuple[str, Iterator[str]]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        work.append((node, iter(sorted(graph[node]))))

    for root in sorted(set(graph) - set(index)):
        if root not in index:
            enter(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None and child not in index:
                enter(child)
            elif child is not None:
                if child in stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    at = stack.index(node)
                    component, stack[at:] = frozenset(stack[at:]), []
                    if len(component) > 1:
                        found.append(component)
    return found


def _function_lengths(relpath: str, tree: ast.Module) -> dict[str, int]:
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = (child.end_lineno or child.lineno) - child.lineno + 1
                    key = f"{relpath}::{qualname}"
                    found[key] = max(found.get(key, 0), length)
                visit(child, qualname + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    """The modules over MAX_MODULE_LINES and the functions over MAX_FUNCTION_LINES."""
    modules: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in _modules().values():
        relpath = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            modules[relpath] = lines
        for key, length in _function_lengths(relpath, _tree(path)).items():
            if length > MAX_FUNCTION_LINES:
                functions[key] = length
    return modules, functions


Section = tuple[str, list[str]]
SHRINK = "the allowlist may only shrink: remove these from tests/architecture_allowlist.py"


def _message(*sections: Section) -> str:
    """A failure message: each section with findings, its title and one finding a line."""
    found = [(title, lines) for title, lines in sections if lines]
    return "\n\n".join(f"{t}:\n" + "\n".join(f"  {x}" for x in ls) for t, ls in found)


def _size_sections(
    kind: str, limit: int, current: dict[str, int], allowed: dict[str, int]
) -> list[Section]:
    grown = [k for k, n in current.items() if k in allowed and n > allowed[k]]
    return [
        (
            f"{kind} over {limit} lines (split them)",
            [f"{k}: {n} lines" for k, n in sorted(current.items()) if k not in allowed],
        ),
        (
            f"allowlisted {kind} grew (they may only shrink)",
            [f"{k}: {current[k]} lines, allowlisted at {allowed[k]}" for k in sorted(grown)],
        ),
        (
            f"{kind} no longer over {limit} lines (or gone); {SHRINK}",
            sorted(set(allowed) - set(current)),
        ),
    ]


def _allowlist() -> ModuleType:
    return importlib.import_module("tests.architecture_allowlist")


def test_no_module_imports_against_the_dependency_rule() -> None:
    current = _violations()
    allowed: frozenset[str] = _allowlist().ALLOWED_VIOLATIONS
    message = _message(
        (
            "imports against the dependency rule",
            [f"{v}    ({', '.join(sorted(current[v]))})" for v in sorted(set(current) - allowed)],
        ),
        (f"allowlisted imports that no longer occur; {SHRINK}", sorted(allowed - set(current))),
    )
    assert not message, message + "\n\n" + RULE


def _sets(sets: list[frozenset[str]]) -> list[str]:
    return sorted("{" + ", ".join(sorted(each)) + "}" for each in sets)


def test_no_import_cycles() -> None:
    current = _strongly_connected(_graph())
    allowed: frozenset[frozenset[str]] = _allowlist().ALLOWED_CYCLES
    new = [c for c in current if not any(c <= a for a in allowed)]
    stale = [a for a in allowed if not any(len(a & c) >= 2 for c in current)]
    message = _message(
        ("import cycles (strongly connected modules; function-local imports count)", _sets(new)),
        (f"allowlisted cycles (ALLOWED_CYCLES) that no longer exist; {SHRINK}", _sets(stale)),
    )
    assert not message, message


_BLOCKER = """
import importlib, importlib.abc, sys, traceback
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: this package imports without ML libraries")
sys.meta_path.insert(0, Block())
failed = 0
for module in sys.argv[2:]:
    try:
        importlib.import_module(module)
    except BaseException:
        failed += 1; print(f"--- import {module} failed:", file=sys.stderr); traceback.print_exc()
sys.exit(failed > 0)
"""


@pytest.mark.parametrize("package", ["core", "gate"])
def test_core_and_gate_import_without_ml_libraries(package: str) -> None:
    if not (PACKAGE / package).is_dir():
        pytest.skip(f"privaudit/{package}/ does not exist yet (#18 moves modules there)")
    prefix = f"privaudit.{package}"
    names = [n for n in _modules() if n == prefix or n.startswith(prefix + ".")]
    command = [sys.executable, "-c", _BLOCKER, ",".join(BLOCKED_AT_RUNTIME), *names]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"privaudit/{package}/ must import without {', '.join(BLOCKED_AT_RUNTIME)}:\n"
        + result.stderr
    )


def test_modules_stay_small() -> None:
    allow = _allowlist()
    modules, functions = _sizes()
    message = _message(
        *_size_sections("modules", MAX_MODULE_LINES, modules, allow.LONG_MODULES),
        *_size_sections("functions", MAX_FUNCTION_LINES, functions, allow.LONG_FUNCTIONS),
    )
    assert not message, message


def _frozenset(items: list[str], indent: str) -> str:
    """A frozenset literal as ruff format writes it: one item a line, trailing commas."""
    if not items:
        return "frozenset()"
    body = "".join(f"{indent}        {item},\n" for item in items)
    return f"frozenset(\n{indent}    {{\n{body}{indent}    }}\n{indent})"


def _render_allowlist() -> str:
    modules, functions = _sizes()
    cycles = sorted(sorted(c) for c in _strongly_connected(_graph()))
    out = [
        "# Debt of #18: may only shrink. Regenerate only to remove entries; a new entry needs a",
        "# reason in review.",
        "#",
        "# Regenerate: python -m tests.test_architecture --write-allowlist",
        '"""What tests/test_architecture.py tolerates today (see its docstring for the rule)."""',
        "",
        "from __future__ import annotations",
        "",
        "ALLOWED_VIOLATIONS: frozenset[str] = "
        + _frozenset([f'"{v}"' for v in sorted(_violations())], ""),
        "",
        "ALLOWED_CYCLES: frozenset[frozenset[str]] = "
        + _frozenset([_frozenset([f'"{m}"' for m in c], " " * 8) for c in cycles], ""),
        "",
        "LONG_MODULES: dict[str, int] = " + _dict(modules),
        "",
        "LONG_FUNCTIONS: dict[str, int] = " + _dict(functions),
    ]
    lines = "\n".join(out).splitlines()
    return "\n".join(f"{x}  # noqa: E501" if len(x) > 100 else x for x in [*lines, ""])


def _dict(items: dict[str, int]) -> str:
    body = "".join(f'    "{k}": {n},\n' for k, n in sorted(items.items()))
    return "{\n" + body + "}" if items else "{}"


def main(argv: list[str]) -> int:
    if argv != ["--write-allowlist"]:
        print("usage: python -m tests.test_architecture --write-allowlist", file=sys.stderr)
        return 2
    ALLOWLIST_FILE.write_text(_render_allowlist(), encoding="utf-8")
    print(f"wrote {ALLOWLIST_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
