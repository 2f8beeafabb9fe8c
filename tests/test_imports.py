"""The package's import graph has no cycles, counting every import — at the top of a module or
inside a function — so no module works around a cycle with a late import. Lower layers never
import higher ones: nothing below the app imports gradio or the app modules."""

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "vaelab"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """vaelab modules that ``path`` imports anywhere in its body. ``from vaelab import x`` counts
    as importing ``vaelab.x`` when that is a module, else the package ``vaelab``."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) for m, p in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    colour = {m: 0 for m in g}  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m):
        colour[m] = 1
        stack.append(m)
        for n in sorted(g[m]):
            if n == "vaelab":  # the package __init__ only re-exports; its imports are checked on their own
                continue
            if colour[n] == 1:
                return stack[stack.index(n):] + [n]
            if colour[n] == 0:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        colour[m] = 2
        return None

    for m in sorted(g):
        if colour[m] == 0:
            found = visit(m)
            if found:
                return found
    return None


def test_the_checker_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_is_read_with_late_imports():
    g = graph()
    assert "vaelab.checkpoint" in g["vaelab.prior"]  # imported inside save_prior
    assert "vaelab.checkpoint" in g["vaelab.train"]


def test_no_import_cycles_in_the_package():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checkpoint_loader_imports_no_subsystem():
    g = graph()
    assert not g["vaelab.checkpoint"] & {"vaelab.prior", "vaelab.models.code_prior", "vaelab.classifier"}
    assert not g["vaelab.folders"]  # the bottom layer


def test_only_the_app_layer_imports_gradio():
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        uses_gradio = any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "gradio" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "gradio")
            for n in ast.walk(tree))
        if uses_gradio:
            assert name == "vaelab.app" or name.startswith("vaelab.app."), f"{name} imports gradio"
