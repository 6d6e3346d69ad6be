"""Dependencies between the packages of src/lifeboat point one way: downwards.

Each top-level package or module has a layer; a module may import from its own package and
from lower layers only. KNOWN_UPWARD lists the upward imports the code still has, each with
the reason it is still there: the test fails on any new one, and on a listed one that is
gone (so the list only shrinks). The walk reads every import statement, including those
inside functions and under TYPE_CHECKING: a deferred import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import lifeboat

PACKAGE = Path(lifeboat.__file__).parent

# Higher imports lower. Two packages never share a layer, so the order is total and no
# cycle between packages can pass.
LAYERS = {
    "entry": 100,
    "cli": 90,
    "export": 86,
    "daemon": 84,
    "demo": 80,
    "metrics": 76,
    "ops": 70,
    "notify": 65,
    "sources": 60,
    "wal": 50,
    "context": 45,
    "config": 40,
    "policy": 35,
    "repo": 30,
    "postgres": 28,
    "pipeline": 20,
    "storage": 15,
    "errors": 5,
    "util": 0,
    "__init__": 0,
}

# (importing module, imported module): why the upward import is still there
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every lifeboat module the file imports; `from lifeboat import x` names lifeboat.x
    when x is a module, else lifeboat itself (its __version__)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "lifeboat")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "lifeboat":
                continue
            for alias in node.names:
                submodule = PACKAGE.parent.joinpath(*node.module.split("."), alias.name)
                if submodule.is_dir() or submodule.with_suffix(".py").exists():
                    found.add(f"{node.module}.{alias.name}")
                else:
                    found.add(node.module)
    return found


def component(module: str) -> str:
    """The top-level package or module of lifeboat a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph() -> set[tuple[str, str]]:
    return {
        (module_name(path), imported)
        for path in sorted(PACKAGE.rglob("*.py"))
        for imported in imported_modules(path)
    }


def upward(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {
        (importer, imported)
        for importer, imported in edges
        if component(importer) != component(imported)
        and LAYERS[component(imported)] > LAYERS[component(importer)]
    }


def test_every_package_has_a_layer() -> None:
    components = {component(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert components - LAYERS.keys() == set(), "give each new package a layer in LAYERS"
    assert LAYERS.keys() - components == set(), "LAYERS names a package that is gone"


def test_no_upward_import_beyond_the_known_ones() -> None:
    found = upward(import_graph())
    assert found - KNOWN_UPWARD.keys() == set(), "a new upward import"
    assert KNOWN_UPWARD.keys() - found == set(), "fixed: remove it from KNOWN_UPWARD"


def test_no_relative_imports() -> None:
    """The walk above resolves absolute imports only; the code has no relative ones."""
    relative = [
        f"{module_name(path)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_the_check_sees_an_upward_import() -> None:
    """The rule itself: storage importing the repository layer is caught, the reverse is not."""
    edges = {
        ("lifeboat.storage.local", "lifeboat.repo.layout"),
        ("lifeboat.repo.catalog", "lifeboat.storage.base"),
        ("lifeboat.wal.spool", "lifeboat.wal.archive"),
    }
    assert upward(edges) == {("lifeboat.storage.local", "lifeboat.repo.layout")}


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from lifeboat import __version__\n"
        "def f() -> None:\n"
        "    from lifeboat.wal import archive\n"
        "    import lifeboat.repo.layout\n"
    )
    assert imported_modules(source) == {"lifeboat", "lifeboat.wal.archive", "lifeboat.repo.layout"}
