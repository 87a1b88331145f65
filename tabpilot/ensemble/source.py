"""Python source that rebuilds objects: estimators as constructor calls with the parameters that differ
from their defaults, and tabpilot's own transformers and helpers copied from their modules with what
they need, so an exported script runs where tabpilot is not installed.

No library writes an arbitrary scikit-learn estimator back as code (sklearn's repr elides values and
is not always valid Python; skl2onnx and friends give a graph, not a script), so this does it.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import math
import re
import sys
import textwrap
from typing import Any

import numpy as np

WIDTH = 100  # longer calls are written one argument per line
LITERALS = (type(None), bool, int, float, str)


class ExportError(ValueError):
    """An object that cannot be written as code (a lambda, a closure, a fitted-only state)."""


def _public_module(obj: Any) -> str:
    """The shortest module path that exports `obj` (sklearn.preprocessing, not its _encoders)."""
    parts = obj.__module__.split(".")
    for i in range(1, len(parts) + 1):
        path = ".".join(parts[:i])
        try:
            if getattr(importlib.import_module(path), obj.__name__, None) is obj:
                return path
        except ImportError:
            continue
    return str(obj.__module__)


def _free_names(tree: ast.AST) -> set[str]:
    """The names a definition reads, annotations left out (the script does not evaluate them)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_arg(self, node: ast.arg) -> None:
            return None

        def visit_FunctionDef(self, node: Any) -> None:
            for part in (*node.decorator_list, node.args, *node.body):
                self.visit(part)

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
            if node.value is not None:
                self.visit(node.value)

        def visit_Name(self, node: ast.Name) -> None:
            found.add(node.id)

    Visitor().visit(tree)
    return found


def _assignment(module: Any, name: str) -> str | None:
    """The source of the module-level statement that assigns `name`, if there is exactly one."""
    try:
        text = inspect.getsource(module)
    except (OSError, TypeError):
        return None
    found = [node for node in ast.parse(text).body
             if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets))
             or (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name)]
    return ast.get_source_segment(text, found[0]) if len(found) == 1 else None


def _imported_from(module: Any, name: str) -> str | None:
    """The module `module`'s own `from X import name` names (X), so the script imports it alike."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any((alias.asname or alias.name) == name == alias.name for alias in node.names):
                return node.module
    return None


def _is_default(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty:
        return False
    if isinstance(value, float) and isinstance(default, float) and math.isnan(value) and math.isnan(default):
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # arrays and other values without a plain truth: written out
        return False


class Source:
    """The imports and tabpilot definitions a script needs, gathered as its code is written."""

    def __init__(self) -> None:
        self.imports: dict[str, str] = {}  # name in the script -> its import line
        self.definitions: dict[str, str] = {}  # name -> source, in dependency order
        self._origins: dict[str, Any] = {}

    def _claim(self, name: str, obj: Any) -> bool:
        """Whether `name` is still to be defined; a clash of two objects under one name is an error."""
        if name in self._origins:
            if self._origins[name] is not obj:
                raise ExportError(f"two objects are named {name} in the exported script")
            return False
        self._origins[name] = obj
        return True

    def name(self, obj: Any, origin: Any = None) -> str:
        """The script's name for a module, class, function or numpy type (imported or copied)."""
        if inspect.ismodule(obj):
            if obj.__name__.split(".")[0] == "tabpilot":
                raise ExportError(f"the script would import {obj.__name__}: copy what it uses instead")
            alias = {"numpy": "np", "pandas": "pd"}.get(obj.__name__, obj.__name__.split(".")[-1])
            if self._claim(alias, obj):
                line = f"import {obj.__name__}" if alias == obj.__name__ else f"import {obj.__name__} as {alias}"
                self.imports[alias] = line
            return alias
        if getattr(obj, "__module__", "") == "builtins":
            return str(obj.__name__)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            raise ExportError(f"{obj!r} is not a class or a function")
        if obj.__name__ == "<lambda>" or "<locals>" in obj.__qualname__:
            raise ExportError(f"{obj.__qualname__} is defined inside a function: it cannot be exported")
        if obj.__module__ == "numpy" or obj.__module__.startswith("numpy."):
            return f"{self.name(np)}.{obj.__name__}"
        if obj.__module__.split(".")[0] == "tabpilot":
            self.copy(obj)
            return str(obj.__name__)
        if self._claim(obj.__name__, obj):
            where = (_imported_from(origin, obj.__name__) if origin is not None else None) or _public_module(obj)
            self.imports[obj.__name__] = f"from {where} import {obj.__name__}"
        return str(obj.__name__)

    def copy(self, obj: Any) -> None:
        """Copy a tabpilot class or function into the script, after what it reads from its module."""
        if not self._claim(obj.__name__, obj):
            return
        text = textwrap.dedent(inspect.getsource(obj))
        self._needs(text, sys.modules[obj.__module__], obj.__name__)
        self.definitions[obj.__name__] = f"# from {obj.__module__}\n{text.rstrip()}"

    def _needs(self, text: str, module: Any, own: str) -> None:
        """Define first every module-level name of `module` that `text` reads."""
        for used in sorted(_free_names(ast.parse(text)) - {own}):
            if used not in vars(module) or hasattr(builtins, used):
                continue  # a local name, or Python's own
            value = vars(module)[used]
            if inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
                written = self.name(value, module)
                if written != used:  # imported under another name, or numpy's np.float64
                    self.definitions.setdefault(used, f"{used} = {written}")
            elif self._claim(used, value):
                assigned = _assignment(module, used)  # as the module writes it: pd.Series(...).dtype
                if assigned is None:
                    self.definitions[used] = f"{used} = {self.code(value)}"
                else:
                    self._needs(assigned, module, used)
                    self.definitions[used] = assigned

    def code(self, value: Any, indent: int = 0, output: str | None = None) -> str:
        """A Python expression that rebuilds `value` (an estimator unfitted, with its parameters).
        `output` is the set_output an enclosing estimator passes down (written once, where it starts)."""
        if isinstance(value, float) or isinstance(value, np.floating):
            value = float(value)
            if math.isnan(value):
                return f"{self.name(np)}.nan"
            if math.isinf(value):
                return f"{'-' if value < 0 else ''}{self.name(np)}.inf"
            return repr(value)
        if isinstance(value, np.generic):
            return repr(value.item())
        if isinstance(value, LITERALS):
            return repr(value)
        if isinstance(value, np.ndarray):
            numpy = self.name(np)
            return f"{numpy}.array({self.code(value.tolist(), indent)}, dtype={numpy}.{value.dtype.name})"
        if isinstance(value, (list, tuple, set, frozenset)):
            ordered = sorted(value) if isinstance(value, (set, frozenset)) else value
            items = [self.code(v, indent + 4, output) for v in ordered]
            open_, close = {list: "[]", tuple: "()"}.get(type(value), "{}")
            if isinstance(value, tuple) and len(items) == 1:
                items[0] += ","
            text = self._layout(open_, items, close, indent)
            if "\n" in text and isinstance(value, tuple) and len(items) > 1 and not any("\n" in i for i in items[:-1]):
                # ('name', Estimator(\n...\n)): the last item hangs from the line the others start
                text = f"({', '.join(items[:-1])}, {self.code(value[-1], indent, output)})"
            return text if type(value) in (list, tuple, set) else f"frozenset({text})"
        if isinstance(value, dict):
            items = [f"{self.code(k)}: {self.code(v, indent + 4, output)}" for k, v in value.items()]
            return self._layout("{", items, "}", indent)
        if isinstance(value, np.ufunc):
            return f"{self.name(np)}.{value.__name__}"
        if hasattr(value, "get_params") and not inspect.isclass(value):
            return self._call(value, indent, output)
        if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
            return self.name(value)
        raise ExportError(f"a {type(value).__name__} cannot be written as code")

    def _call(self, estimator: Any, indent: int, inherited: str | None) -> str:
        cls = type(estimator)
        signature = inspect.signature(cls.__init__).parameters
        # set_output reaches a Pipeline's steps and a ColumnTransformer's parts: written where it starts.
        output = (getattr(estimator, "_sklearn_output_config", None) or {}).get("transform")
        args = []
        for key, value in estimator.get_params(deep=False).items():
            default = signature[key].default if key in signature else None  # **kwargs (XGBoost): None
            if not _is_default(value, default) and not (key not in signature and value is None):
                args.append(f"{key}={self.code(value, indent + 4, output or inherited)}")
        text = self._layout(f"{self.name(cls)}(", args, ")", indent)
        return f'{text}.set_output(transform="{output}")' if output and output != inherited else text

    @staticmethod
    def _layout(open_: str, items: list[str], close: str, indent: int) -> str:
        flat = f"{open_}{', '.join(items)}{close}"
        if len(flat) + indent <= WIDTH and "\n" not in flat:
            return flat
        pad = " " * (indent + 4)
        return open_ + "\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + close

    def header(self) -> str:
        """The import lines, then the copied definitions."""
        copied = "\n".join(self.definitions.values())
        if re.search(r"^\s*(from|import) tabpilot", copied, flags=re.MULTILINE):
            raise ExportError("a copied definition imports tabpilot inside a function: the script would need it")
        lines = sorted(self.imports.values(), key=lambda line: (line.startswith("from"), line))
        return "\n".join(lines) + "\n\n\n" + "\n\n\n".join(self.definitions.values())
