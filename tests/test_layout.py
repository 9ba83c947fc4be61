"""The README's Layout section is the package's map: it lists every module and folder of `tinygrad_cnn/`, and
imports flow one way down it (each entry imports only from the entries above it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinygrad_cnn"
GATHERERS = {"__init__", "__main__"}  # the package's public names and `python -m`: they may import anything


def layout_order() -> list[str]:
    """The entries of the README's Layout block, top to bottom ("autograd", "ops", ...)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Layout"):]
    block = re.search(r"```\ntinygrad_cnn/\n(.*?)```", section, re.S).group(1)
    return [m.group(1) for m in re.finditer(r"^  (\w+)(?:/|\.py)\s", block, re.M)]


def top_level_units() -> set[str]:
    """Every module and sub-package directly in tinygrad_cnn/."""
    return {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir()
                                                      if p.is_dir() and (p / "__init__.py").is_file()}


def imported_units(path: Path) -> set[str]:
    """The top-level units of tinygrad_cnn that the module at `path` imports (relative or absolute)."""
    parts = path.relative_to(ROOT).with_suffix("").parts  # ("tinygrad_cnn", "ops", "conv")
    package = parts if parts[-1] == "__init__" else parts[:-1]
    package = package[:-1] if package[-1] == "__init__" else package
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            names = [f"{name}.{alias.name}" for alias in node.names] if name == "tinygrad_cnn" else [name]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("tinygrad_cnn.")}
    return found


def test_the_layout_lists_every_module_once() -> None:
    order = layout_order()
    assert len(order) == len(set(order)), f"listed twice: {sorted({u for u in order if order.count(u) > 1})}"
    assert set(order) == top_level_units() - GATHERERS, (
        f"in the tree but not in the README's Layout: {sorted(top_level_units() - GATHERERS - set(order))}; "
        f"listed but not in the tree: {sorted(set(order) - top_level_units())}")


def test_imports_flow_one_way_down_the_layout() -> None:
    rank = {unit: i for i, unit in enumerate(layout_order())}
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if unit in GATHERERS or unit not in rank:  # an unlisted module fails the test above
            continue
        upward += [f"{path.relative_to(ROOT)} imports {other}" for other in sorted(imported_units(path) - {unit})
                   if rank.get(other, len(rank)) >= rank[unit]]
    assert not upward, "imports against the README's layer order:\n" + "\n".join(upward)
