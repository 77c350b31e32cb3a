"""Condition coverage of node code, for the guided strategy: which way every comparison and
every operand of ``and``/``or`` went, with integers compared by their *relation* (below, equal,
above), as libFuzzer's value profile does for comparison operands.

Why: a run reaching a line says little in these systems (nearly every line runs in every run);
what a wrong ``<`` or a wrong ``and`` needs is a run where that comparison takes the value that
tells the two apart: its operands equal, the left operand of an ``and`` false while the right one
is true. Every (comparison, outcome) pair is a feature, so the guided strategy keeps and resumes
the runs that took a comparison a new way.

How it stays cheap and exact: the node code's modules are compiled a second time from their
source with every single comparison ``a OP b`` turned into a call of that operator's probe,
``__treadle_lt__(site, a, b)`` and so on, and every operand ``x`` of a boolean operator that is
not itself a comparison into ``__treadle_bool__(site, x)`` (same value, same short-circuit, same
exceptions), and the live functions' ``__code__`` is swapped for the instrumented one before
a guided run and back when the exploration ends (:func:`enable` / :func:`disable`). Line numbers
are the source's, so tracebacks are unchanged. Which modules: those of the package that defines
the system's ``build``, except that module (:func:`node_modules`), the same in every worker.
"""

from __future__ import annotations

import ast
import sys
import threading
import types
import zlib
from collections.abc import Iterable
from typing import Any

#: the probes' names, by comparison operator
_PROBES: dict[type[ast.cmpop], str] = {
    ast.Lt: "__treadle_lt__",
    ast.LtE: "__treadle_le__",
    ast.Gt: "__treadle_gt__",
    ast.GtE: "__treadle_ge__",
    ast.Eq: "__treadle_eq__",
    ast.NotEq: "__treadle_ne__",
    ast.In: "__treadle_in__",
    ast.NotIn: "__treadle_not_in__",
    ast.Is: "__treadle_is__",
    ast.IsNot: "__treadle_is_not__",
}

#: the current run's features, in the order they were first reached (the observer reads them),
#: and the same as a set. Module globals, for speed (a thread-local costs as much as the rest
#: of a probe): runs that record them hold RUN_LOCK, so one thread of a process records at a
#: time (threads of one process do not run Python code in parallel anyway)
_order: list[int] = []
_seen: set[int] = set()
RUN_LOCK = threading.RLock()


def reset() -> list[int]:
    """A new run: nothing reached yet. Returns the list the probes fill."""
    global _order, _seen
    _order = []
    _seen = set()
    return _order


# A feature is ``site * 8 + outcome``: for integers and floats, how the operands relate (0 below,
# 1 equal, 2 above: a boundary mutant or an off-by-one differs only at equality), else the result
# (3 true, 4 false); for an operand of ``and``/``or``, 5 true, 6 false.
_TEMPLATE = """
def {name}(site, a, b):
    r = {expr}
    if (type(a) is int or type(a) is float) and (type(b) is int or type(b) is float):
        key = site * 8 + (0 if a < b else 1 if a == b else 2)
    else:
        key = site * 8 + (3 if r else 4)
    if key not in _seen:
        _seen.add(key)
        _order.append(key)
    return r
"""
_EXPR = {
    "__treadle_lt__": "a < b",
    "__treadle_le__": "a <= b",
    "__treadle_gt__": "a > b",
    "__treadle_ge__": "a >= b",
    "__treadle_eq__": "a == b",
    "__treadle_ne__": "a != b",
    "__treadle_in__": "a in b",
    "__treadle_not_in__": "a not in b",
    "__treadle_is__": "a is b",
    "__treadle_is_not__": "a is not b",
}
for _name, _expr in _EXPR.items():
    exec(_TEMPLATE.format(name=_name, expr=_expr))  # one small function per operator: no dispatch


def __treadle_bool__(site: int, x: Any) -> Any:
    key = site * 8 + (5 if x else 6)
    if key not in _seen:
        _seen.add(key)
        _order.append(key)
    return x


PROBES: dict[str, Any] = {name: globals()[name] for name in (*_EXPR, "__treadle_bool__")}


class _Instrument(ast.NodeTransformer):
    def __init__(self, base: int) -> None:
        self.site = base

    def _next(self) -> int:
        self.site += 1
        return self.site

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) != 1:  # a chain: left alone (rare in node code)
            return node
        call = ast.Call(
            func=ast.Name(_PROBES[type(node.ops[0])], ast.Load()),
            args=[ast.Constant(self._next()), node.left, node.comparators[0]],
            keywords=[],
        )
        return ast.copy_location(call, node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        # operands that are comparisons or boolean operators already say which way they went
        plain = [not isinstance(v, (ast.Compare, ast.BoolOp)) for v in node.values]
        self.generic_visit(node)
        node.values = [
            ast.copy_location(
                ast.Call(
                    func=ast.Name("__treadle_bool__", ast.Load()),
                    args=[ast.Constant(self._next()), v],
                    keywords=[],
                ),
                v,
            )
            if wrap
            else v
            for v, wrap in zip(node.values, plain)
        ]
        return node


def _by_key(module_code: types.CodeType) -> dict[tuple[str, int], types.CodeType]:
    return {
        (c.co_qualname, c.co_firstlineno): c for c in _codes(module_code) if c.co_name != "<module>"
    }


def _codes(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _codes(c)


def _functions(module: types.ModuleType) -> Iterable[types.FunctionType]:
    """The module's own functions and methods (those whose code was compiled from its file)."""
    seen: set[int] = set()
    stack: list[Any] = list(vars(module).values())
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        elif isinstance(obj, property):
            stack.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
            continue
        if isinstance(obj, types.FunctionType):
            if obj.__module__ == module.__name__:
                yield obj
        elif isinstance(obj, type) and obj.__module__ == module.__name__:
            stack.extend(vars(obj).values())


class _Swap:
    """The instrumented code of one module's functions, swapped in and out."""

    def __init__(self, module: types.ModuleType, base: int) -> None:
        self.module = module
        self.pairs: list[tuple[types.FunctionType, types.CodeType, types.CodeType]] = []
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            return
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
            plain = _by_key(compile(source, path, "exec", dont_inherit=True))
            tree = ast.fix_missing_locations(_Instrument(base).visit(ast.parse(source, path)))
            instrumented = _by_key(compile(tree, path, "exec", dont_inherit=True))
        except (OSError, SyntaxError, ValueError):
            return
        for fn in _functions(module):
            old = fn.__code__
            key = (old.co_qualname, old.co_firstlineno)
            same, new = plain.get(key), instrumented.get(key)
            # only a function whose loaded code is what the file compiles to now: a file edited
            # since it was imported must not swap other code in (it keeps its own, unprobed)
            if (
                same is not None
                and new is not None
                and same.co_code == old.co_code
                and same.co_consts == old.co_consts
                and new.co_freevars == old.co_freevars
            ):
                self.pairs.append((fn, old, new))

    def on(self) -> None:
        self.module.__dict__.update(PROBES)
        for fn, _, new in self.pairs:
            fn.__code__ = new

    def off(self) -> None:
        for fn, old, _ in self.pairs:
            fn.__code__ = old


#: module name -> its swap, while enabled (the instrumented code is compiled once per process)
_cache: dict[str, _Swap] = {}
_active: list[str] = []


def node_modules(binding: str) -> list[str]:
    """The modules to instrument for a system whose ``build`` is defined in module ``binding``:
    the loaded modules of its package except the binding itself (its checks and coverage
    abstraction run at every step and are not node code), or, for a module outside a package
    (a system in one file), that module. treadle's own modules never."""
    mod = sys.modules.get(binding)
    package = (getattr(mod, "__package__", None) or "") if mod is not None else ""
    if not package:
        return [binding] if mod is not None and _instrumentable(binding) else []
    return sorted(
        name
        for name in list(sys.modules)
        if (name == package or name.startswith(package + "."))
        and name != binding
        and _instrumentable(name)
    )


def _instrumentable(name: str) -> bool:
    return not (name == "treadle" or name.startswith("treadle.")) or name.startswith(
        "treadle.impl."
    )


_modules_of: dict[int, tuple[Any, list[str]]] = {}


def modules_of(system: Any) -> list[str]:
    """The modules of a system's node code (:func:`node_modules` of its ``build``'s module; looked
    up once per process and system, without building anything)."""
    got = _modules_of.get(id(system))
    if got is None or got[0] is not system:
        build = system.build
        binding = getattr(build, "__module__", None) or type(build).__module__
        got = _modules_of[id(system)] = (system, node_modules(binding))
    return got[1]


def enable(modules: Iterable[str]) -> None:
    """Instrument these modules' functions (idempotent)."""
    for name in modules:
        if name in _active:
            continue
        swap = _cache.get(name)
        mod = sys.modules.get(name)
        if mod is None:
            continue
        if swap is None or swap.module is not mod:  # first time, or the module was reloaded
            # site numbers: the same in every process (they travel from workers to the corpus)
            swap = _cache[name] = _Swap(mod, zlib.crc32(name.encode()) * 100_000)
        swap.on()
        _active.append(name)


def disable() -> None:
    """Put the original code back."""
    while _active:
        _cache[_active.pop()].off()
