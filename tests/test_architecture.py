"""The walls of the house, read from the source: every import of every module (ast), and the calls that break a
wall. Run as a script (`python tests/test_architecture.py`) it prints the import graph's size and its cycles.

- no import cycles, counting a package's `__init__` as a module (a module that does `from gptscratch.data import
  X` depends on data/__init__.py) and imports inside functions (they run too, only later);
- gptscratch/model/ imports only torch, the standard library and itself;
- nothing imports gptscratch/cli/ (but cli/ itself and `python -m gptscratch`);
- only cli/ imports typer, rich or click;
- an optional extra's library is imported only by the module that needs it (fastapi/uvicorn: serve/, lm_eval:
  evaluation/harness.py, transformer_lens: interpret/transformer_lens.py), and serve/ only by cli/serve.py;
- no print(), sys.exit(), exit(), quit() or os._exit() outside cli/ (library code reports, the CLI speaks);
- no private torch operators (torch.ops.<ns>._name), no private torch modules (torch._C, ...), no ctypes, no
  assignment to an attribute of another library (monkey-patching).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gptscratch"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
CLI_LIBRARIES = {"typer", "rich", "click"}
# An optional extra's library → the only modules (or packages) that may import it.
EXTRA_LIBRARIES = {"fastapi": ("gptscratch.serve",), "starlette": ("gptscratch.serve",),
                   "uvicorn": ("gptscratch.serve", "gptscratch.cli.serve"), "lm_eval": ("gptscratch.evaluation.harness",),
                   "transformer_lens": ("gptscratch.interpret.transformer_lens",), "llama_cpp": ()}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    imports: set[str] = field(default_factory=set)        # gptscratch modules it imports (anywhere in the file)
    outside: set[str] = field(default_factory=set)        # top-level names of other libraries it imports


def load_modules(root: Path = PACKAGE) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8")))
    for module in modules.values():
        _collect_imports(module, modules)
    return modules


def _collect_imports(module: Module, modules: dict[str, Module]) -> None:
    def add(target: str) -> None:
        if target == "gptscratch" or target.startswith("gptscratch."):
            if target != module.name:
                module.imports.add(target)
        else:
            module.outside.add(target.split(".")[0])

    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_longest_module(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else _longest_module(base, modules))


def _longest_module(name: str, modules: dict[str, Module]) -> str:
    """`gptscratch.a.b.c` → the longest prefix that is one of our modules (or the name itself if none is)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return name


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    return {name: {t for t in m.imports if t in modules} for name, m in modules.items()}


def _in(module: Module, package: str) -> bool:
    return module.name == package or module.name.startswith(package + ".")


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def wall_breaches(modules: dict[str, Module]) -> list[str]:
    """Every breach of the walls in the module docstring, as 'module: what'."""
    found = []
    for m in modules.values():
        where = m.name
        if _in(m, "gptscratch.model"):
            others = {t for t in m.imports if not t.startswith("gptscratch.model")}
            found += [f"{where}: the teaching core imports {t}" for t in sorted(others)]
            found += [f"{where}: the teaching core imports {lib}" for lib in sorted(m.outside - STDLIB - {"torch"})]
        if not _in(m, "gptscratch.cli") and m.name != "gptscratch.__main__":
            found += [f"{where}: imports {t}" for t in sorted(m.imports) if t.startswith("gptscratch.cli")]
            found += [f"{where}: imports {lib} (only cli/ may)" for lib in sorted(m.outside & CLI_LIBRARIES)]
        for lib in sorted(m.outside & set(EXTRA_LIBRARIES)):
            if not any(_in(m, allowed) for allowed in EXTRA_LIBRARIES[lib]):
                found.append(f"{where}: imports {lib}, which only {', '.join(EXTRA_LIBRARIES[lib]) or 'tests'} may")
        if not (_in(m, "gptscratch.serve") or m.name == "gptscratch.cli.serve"):
            found += [f"{where}: imports {t} (only cli/serve.py may)" for t in sorted(m.imports)
                      if t.startswith("gptscratch.serve")]
        if "ctypes" in m.outside:
            found.append(f"{where}: imports ctypes")
        imported_libraries = _imported_names(m.tree)
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                if not _in(m, "gptscratch.cli") and name in ("print", "sys.exit", "exit", "quit", "os._exit"):
                    found.append(f"{where}:{node.lineno}: calls {name}()")
                if name == "getattr" and node.args and _dotted(node.args[0]).startswith("torch.ops"):
                    found.append(f"{where}:{node.lineno}: looks up a torch operator by name")
            if isinstance(node, ast.Attribute):
                name = _dotted(node)
                parts = name.split(".")
                if parts[:2] == ["torch", "ops"] and any(p.startswith("_") for p in parts[2:]):
                    found.append(f"{where}:{node.lineno}: private torch operator {name}")
                elif parts[0] == "torch" and len(parts) > 1 and parts[1].startswith("_") \
                        and not parts[1].endswith("__"):
                    found.append(f"{where}:{node.lineno}: private torch module {name}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch._"):
                found.append(f"{where}:{node.lineno}: imports private {node.module}")
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    root = _dotted(target).split(".")[0]
                    if isinstance(target, ast.Attribute) and root in imported_libraries:
                        found.append(f"{where}:{node.lineno}: assigns {_dotted(target)} (monkey-patching)")
    return found


def _imported_names(tree: ast.Module) -> set[str]:
    """Local names bound to other libraries' modules or objects (import torch, from torch import nn, ...)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("gptscratch")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and not (node.module or "").startswith("gptscratch"):
            names |= {a.asname or a.name for a in node.names}
    return names


# -- the tests ----------------------------------------------------------------------------------------------------
def test_the_package_has_no_import_cycles():
    found = cycles(import_graph(load_modules()))
    assert not found, "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


def test_the_package_keeps_its_walls():
    breaches = wall_breaches(load_modules())
    assert not breaches, "\n".join(breaches)


MAX_LINES = 350


def test_no_module_is_longer_than_a_sitting():
    """One concept per file: a module past MAX_LINES lines is two concepts (or a concept in need of a package)."""
    long = {m.name: n for m in load_modules().values()
            if (n := len(m.path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_public_definition_of_the_teaching_core_is_documented():
    """A learner reads gptscratch/model/ alone: each module, and each public class and function in it, says what
    it is (formula, shapes, paper) in a docstring."""
    missing = []
    for m in load_modules().values():
        if not _in(m, "gptscratch.model"):
            continue
        if not ast.get_docstring(m.tree):
            missing.append(m.name)
        for node in m.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_") \
                    and not ast.get_docstring(node):
                missing.append(f"{m.name}.{node.name}")
    assert not missing, f"undocumented: {missing}"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The checker itself: a planted cycle, a model module importing numpy, a library print, a private operator,
    ctypes and a monkey-patch must all be reported."""
    root = tmp_path / "gptscratch"
    (root / "model").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from gptscratch import b\n",
        "b.py": "def f():\n    from gptscratch.a import x\n",
        "model/__init__.py": "import numpy\n",
        "library.py": ("import ctypes\nimport torch\nfrom torch import nn\nimport rich\n"
                       "from gptscratch.cli import app\nprint('hi')\ntorch.ops.aten._secret(1)\n"
                       "nn.Module.register_parameter = None\n"),
        "cli/__init__.py": "import typer\nprint('fine here')\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    modules = load_modules(root)
    assert cycles(import_graph(modules)) == [["gptscratch.a", "gptscratch.b"]]
    breaches = "\n".join(wall_breaches(modules))
    for expected in ("gptscratch.model: the teaching core imports numpy", "imports ctypes", "imports rich",
                     "imports gptscratch.cli", "calls print()", "private torch operator torch.ops.aten._secret",
                     "assigns nn.Module.register_parameter"):
        assert expected in breaches, expected
    assert "gptscratch.cli" not in [b.split(":")[0] for b in wall_breaches(modules)]


if __name__ == "__main__":
    found_modules = load_modules()
    graph = import_graph(found_modules)
    print(f"{len(graph)} modules, {sum(len(t) for t in graph.values())} import edges, "
          f"{len(cycles(graph))} cycles, {len(wall_breaches(found_modules))} wall breaches")
    for component in cycles(graph):
        print("cycle:", " ↔ ".join(component))
    for breach in wall_breaches(found_modules):
        print("breach:", breach)
