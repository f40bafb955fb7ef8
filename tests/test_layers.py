"""The core's layers point one way (docs/ARCHITECTURE.md): every import of every module under
workbench/, function-local ones included, goes to a lower layer or stays inside its package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "workbench"
# bottom to top; packages in one layer must not import each other
LAYERS: list[set[str]] = [
    {"errors"},
    {"paths"},  # where files go: nothing of ours below it
    {"config"},  # saved configs hold paths relative to their folder (paths.relative_inside)
    {"devices"},
    {"data", "models"},
    {"plan"},
    {"train"},
    {"advice", "results", "deploy"},
    {"cli"},  # workbench/cli/: every command, on top of the core
    {"__main__"},  # `python -m workbench`
]


def _layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _unit(module: str) -> str:
    """The layer unit of a dotted module name: its top package (or module)."""
    return module.split(".")[1]


def _imports(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {name for name in found if name.startswith("workbench.")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def test_every_package_is_in_a_layer():
    units = {_unit(m) for m in _modules() if m != "workbench"}
    unplaced = {u for u in units if not any(u in layer for layer in LAYERS)}
    assert not unplaced, f"add these to LAYERS and docs/ARCHITECTURE.md: {sorted(unplaced)}"


def test_imports_point_down_the_layers():
    modules = _modules()
    wrong = set()
    for module, path in modules.items():
        if module == "workbench":
            continue
        src = _unit(module)
        for target in _imports(path, module):
            if target not in modules:  # "workbench.x.name": a name inside module x
                target = target.rsplit(".", 1)[0]
            if target not in modules or target == "workbench":
                continue
            dst = _unit(target)
            if dst == src:
                continue
            if _layer_of(dst) >= _layer_of(src):
                wrong.add(f"{module} imports {target} ({src} -> {dst})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))
