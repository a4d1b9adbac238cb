"""The architecture holds: imports point one way and nothing happens at import.

Layers (docs/ARCHITECTURE.md): web -> report -> metrics -> store <- bitrix;
demo writes snapshot files and may use bitrix/store only; rundemo and cli sit
on top and wire everything. Settings (config) are built by the top layers
(the CLI, the web app factory, rundemo) and handed down, so the library
layers never import them. Imports inside functions count too: a lazy import
is still a dependency.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rop"

EVERYTHING = {
    "config",
    "logs",
    "store",
    "bitrix",
    "emulator",
    "metrics",
    "report",
    "web",
    "digests",
    "jobs",
    "demo",
    "rundemo",
    "cli",
}
# What each top-level part of rop may import, besides itself.
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "config": set(),
    # Log format and the REST request log: configured by cli only.
    "logs": set(),
    "store": set(),
    "bitrix": {"store"},
    # A stand-in Bitrix24 portal: it shares nothing with our client, so a
    # client bug cannot hide behind a matching emulator bug.
    "emulator": set(),
    "metrics": {"store"},
    "report": {"metrics", "store"},
    # The page's sync button runs bitrix's sync; web builds settings in create_app.
    # web/asgi.py builds the app for gunicorn from the settings, logs included.
    "web": {"report", "metrics", "store", "bitrix", "config", "logs", "digests", "jobs"},
    # Scheduled digests: the report (in the reader's scope) sent through
    # Bitrix24 chat (bitrix's client) and e-mail; settings are handed down.
    "digests": {"report", "metrics", "store", "bitrix"},
    # Server mode's sync workers: run bitrix's sync, then refresh the report's facts;
    # a periodic task sends the digests that are due.
    "jobs": {"bitrix", "report", "store", "digests"},
    "demo": {"bitrix", "store"},
    "rundemo": EVERYTHING - {"cli", "rundemo"},
    "cli": EVERYTHING - {"cli"},
}

# Calls that build settings, open a store or a connection: never at module level.
FORBIDDEN_AT_IMPORT = {
    "open_store",
    "create_app",
    "load_settings",
    "Settings",
    "Client",
    "AsyncClient",
    "connect",
    "open",
    "socket",
    "serve",
    "serve_in_thread",
    "run_sync",
    "generate",
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "static" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


MODULES = _modules()


def _part(module: str) -> str:
    """rop.web.app -> web; rop.config -> config; rop -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every import in the file, lazy ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, target, [alias.name for alias in node.names]))
    return found


def test_every_part_has_a_layer():
    parts = {_part(module) for module, _ in MODULES}
    unplaced = parts - ALLOWED.keys()
    assert not unplaced, (
        f"new top-level parts {unplaced}: place them in ALLOWED (and ARCHITECTURE.md)"
    )


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module, path):
    part = _part(module)
    wrong = []
    for line, target, _ in _imports(module, path):
        if target == "rop" or not target.startswith("rop."):
            continue
        other = _part(target)
        if other != part and other not in ALLOWED[part]:
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({part} -> {other})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_every_rop_import_resolves(module, path):
    # Lazy imports inside commands and handlers run only on their own path; a
    # renamed function would break them silently until then.
    for line, target, names in _imports(module, path):
        if not target.startswith("rop"):
            continue
        where = f"{path.relative_to(ROOT)}:{line}"
        try:
            imported = importlib.import_module(target)
        except ImportError as exc:
            pytest.fail(f"{where}: {exc}")
        for name in names:
            if name == "*" or hasattr(imported, name):
                continue
            try:
                importlib.import_module(f"{target}.{name}")  # a submodule
            except ImportError:
                pytest.fail(f"{where}: {target} has no {name}")


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _runs_at_import(tree: ast.Module) -> list[ast.Call]:
    """Calls evaluated when the module is imported: module and class bodies,
    decorators and default values, but not function bodies or the
    `if __name__ == "__main__":` block."""
    calls: list[ast.Call] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if expr is not None:
                    visit(expr)
            return
        if isinstance(node, ast.Lambda):
            return
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return
        if isinstance(node, ast.Call):
            calls.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return calls


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_nothing_is_built_at_import(module, path):
    if path.name == "__main__.py":
        return  # `python -m` entry points run by definition
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [
        f"{path.relative_to(ROOT)}:{call.lineno} calls {_called_name(call)}() at import"
        for call in _runs_at_import(tree)
        if _called_name(call) in FORBIDDEN_AT_IMPORT
    ]
    assert not bad, "\n".join(bad)


# Imports every rop module with an audit hook that records sockets, file opens
# other than the import machinery's own and new threads.
_PROBE = r"""
import importlib, json, sys, os

sys.dont_write_bytecode = True  # a fresh clone has no __pycache__ yet: writing one is not rop's doing
modules = json.loads(sys.argv[1])
# Third-party and standard modules load first, so their own start-up reads
# (certificates, mime types, time zones) are not blamed on rop.
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except Exception:
        pass

seen = []
CODE = (".py", ".pyc", ".so", ".pth", ".typed")


def hook(event, args):
    if event == "open":
        path, mode = str(args[0]), args[1] or "r"
        if path.endswith(CODE) or os.path.isdir(path) or path.endswith("__pycache__"):
            return
        seen.append(f"open {path} {mode}")
    elif event.startswith("socket.") or event in ("sqlite3.connect", "_thread.start_new_thread"):
        seen.append(event)


sys.addaudithook(hook)
for name in modules:
    before = len(seen)
    importlib.import_module(name)
    for what in seen[before:]:
        print(json.dumps([name, what]))
"""


def _third_party() -> list[str]:
    names = set()
    for module, path in MODULES:
        for _, target, _ in _imports(module, path):
            top = target.split(".")[0]
            if top and top != "rop":
                names.add(target)
    return sorted(names)


def test_importing_every_module_opens_nothing(tmp_path):
    modules = [m for m, p in MODULES if p.name != "__main__.py"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(modules), json.dumps(_third_party())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert not found, "work done at import time:\n" + "\n".join(f"{m}: {w}" for m, w in found)
