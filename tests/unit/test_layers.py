"""The layering of the code, read from its imports: a request flows app shell ->
features -> the records core -> sync/, geo/ and the database layer, never back up, and no
module imports itself through others. docs/architecture.md draws the same picture."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "sync", "geo")

# Lowest first. A module may import modules of its own layer or a lower one.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("libraries", ("sync", "geo")),
    ("configuration", ("server.settings", "server.errors", "server.bodies")),
    ("database", ("server.db", "server.blobs")),
    ("records core", ("server.core",)),
    (
        "features",
        (
            "server.auth",
            "server.records",
            "server.syncing",
            "server.nearby",
            "server.push",
            "server.reports",
            "server.demo",
            "server.day",
            "server.calendar",
            "server.transfer",
            "server.history",
            "server.org",
            "server.campaigns",
            "server.attachments",
            "server.privacy",
            "server.merging",
            "server.maps",
        ),
    ),
    (
        "app shell",
        (
            "server.app",
            "server.cli",
            "server.background",
            "server.migrate",
            "server.piccolo_conf",
            "server.tables",
            "server.pwa",
        ),
    ),
)
FEATURES = dict(LAYERS)["features"]
SHARED_FEATURES = ("server.auth",)  # who is calling: every feature may ask


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "piccolo_migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project's modules that `name` imports, anywhere in it (lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> tuple[int, str]:
    best: tuple[int, str, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[2]:
                    best = (index, prefix, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0], best[1]


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        if module in PACKAGES:
            continue
        _layer(module)


def test_imports_only_go_down() -> None:
    wrong = []
    for module, imported in GRAPH.items():
        if module in PACKAGES:
            continue
        layer, home = _layer(module)
        for target in imported:
            if target in PACKAGES:
                continue
            target_layer, target_home = _layer(target)
            if target_layer > layer:
                wrong.append(f"{module} -> {target} (up from {LAYERS[layer][0]})")
            elif (
                target_layer == layer
                and home in FEATURES
                and target_home != home
                and target_home not in SHARED_FEATURES
            ):
                wrong.append(f"{module} -> {target} (a feature into another)")
    assert wrong == []


def test_the_libraries_stand_alone() -> None:
    """sync/ never imports server/ (the server plugs storage and rules into it), and geo/
    imports neither."""
    for module, imported in GRAPH.items():
        if module.split(".")[0] == "sync":
            assert {t.split(".")[0] for t in imported} <= {"sync"}, module
        if module.split(".")[0] == "geo":
            assert {t.split(".")[0] for t in imported} <= {"geo"}, module


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components over every import, lazy ones included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_checks_can_fail() -> None:
    """The graph is read: known edges are in it (a broken parser would pass every test)."""
    assert "server.core.session" in GRAPH["server.core.writer"]
    assert "server.db" in GRAPH["server.core.session"]
    assert "sync.engine" in GRAPH["server.core.rules"]
