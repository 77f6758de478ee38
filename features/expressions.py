"""Safe column expressions for dataset mappings: arithmetic, comparisons and a few string/date helpers.

Mappings are configuration, not code, so expressions are parsed with :mod:`ast` and only a small,
documented vocabulary is evaluated (no ``eval``): a mapping file from a partner can never run code.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, Callable

import numpy as np
import pandas as pd

from features.exceptions import ConfigError
from features.limits import (MAX_CONSTANT_CHARS, MAX_EXPONENT, MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH,
                             MAX_EXPRESSION_NODES, MAX_INTEGER_BITS)

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
# Methods callable on a column (``Quantity.abs()``) and on its ``.str`` / ``.dt`` accessors.
_SERIES_METHODS = {"abs", "round", "clip", "isna", "notna", "fillna", "isin", "between", "astype"}
_STR_METHODS = {"startswith", "endswith", "contains", "match", "fullmatch", "lower", "upper", "strip",
                "len", "replace", "slice", "zfill"}
_DT_METHODS = {"floor", "normalize", "tz_localize", "tz_convert"}
_DT_ATTRIBUTES = {"year", "month", "day", "hour", "dayofweek", "date"}
_ASTYPE = {"str": "str", "float": "float64", "int": "Int64", "bool": "boolean"}


def _where(cond: Any, a: Any, b: Any) -> Any:
    return pd.Series(np.where(_as_bool(cond), a, b), index=cond.index) if isinstance(cond, pd.Series) else (
        a if cond else b)


def _coalesce(*values: Any) -> Any:
    out = values[0]
    for v in values[1:]:
        out = out.fillna(v) if isinstance(out, pd.Series) else (v if out is None else out)
    return out


def _number(x: Any) -> Any:
    return pd.to_numeric(x, errors="coerce") if isinstance(x, pd.Series) else float(x)


def _text(x: Any) -> Any:
    return x.astype("str").where(x.notna()) if isinstance(x, pd.Series) else str(x)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "where": _where,  # where(condition, value_if_true, value_if_false)
    "coalesce": _coalesce,  # first non-missing value
    "number": _number,  # text to number; unparseable -> missing
    "text": _text,  # any value as text
    "abs": lambda x: x.abs() if isinstance(x, pd.Series) else abs(x),
    "lower": lambda x: x.str.lower(),
    "upper": lambda x: x.str.upper(),
    "strip": lambda x: x.str.strip(),
}


def _as_bool(x: Any) -> Any:
    if isinstance(x, pd.Series):
        return x.fillna(False).astype(bool) if x.dtype != bool else x
    return bool(x)


class Expression:
    """A parsed, validated expression over a table's columns.

    Parameters
    ----------
    text
        The expression, e.g. ``Quantity * UnitPrice`` or ``InvoiceNo.str.startswith('C')``.
    where
        Where the expression comes from (``online_retail.yaml: transactions.derive.amount``), used in errors.
    """

    def __init__(self, text: str, where: str):
        self.text = str(text)
        self.where = where
        if len(self.text) > MAX_EXPRESSION_CHARS:
            raise ConfigError(f"{where}: expression is {len(self.text):,} characters long (at most "
                              f"{MAX_EXPRESSION_CHARS:,}): {self.text[:40]!r}...")
        try:
            self._tree = ast.parse(self.text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ConfigError(f"{where}: cannot parse expression {self._shown} ({exc.msg})") from None
        except (RecursionError, MemoryError, ValueError):  # nesting past the parser's own stack; huge literals
            raise ConfigError(f"{where}: cannot parse expression {self._shown} (nested too deeply or a number "
                              f"too long)") from None
        self._check_size()
        self.names: set[str] = set()
        self._check(self._tree)

    @property
    def _shown(self) -> str:
        """The expression as messages quote it: whole when short, its start otherwise (one line either way)."""
        return repr(self.text) if len(self.text) <= 120 else f"{self.text[:100]!r}..."

    def _check_size(self) -> None:
        """Depth and node count, walked without recursion: :meth:`_check` and :meth:`_eval` recurse."""
        stack, nodes = [(self._tree, 1)], 0
        while stack:
            node, depth = stack.pop()
            nodes += 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise ConfigError(f"{self.where}: expression nested more than {MAX_EXPRESSION_DEPTH} levels deep "
                                  f"(each + in a chain is one level): {self._shown}")
            if nodes > MAX_EXPRESSION_NODES:
                raise ConfigError(f"{self.where}: expression has more than {MAX_EXPRESSION_NODES} terms: "
                                  f"{self._shown}")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))

    def _fail(self, what: str) -> ConfigError:
        return ConfigError(f"{self.where}: {what} is not allowed in expression {self._shown}")

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if node.id not in FUNCTIONS and node.id not in ("True", "False", "None"):
                self.names.add(node.id)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                if func.id == "col":
                    if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant):
                        raise ConfigError(f"{self.where}: col() takes one quoted column name in {self._shown}")
                    self.names.add(str(node.args[0].value))
                    return
                if func.id not in FUNCTIONS:
                    raise ConfigError(f"{self.where}: unknown function {func.id}() in {self._shown} "
                                      f"(known: col, {', '.join(sorted(FUNCTIONS))})")
            elif isinstance(func, ast.Attribute):
                allowed = _SERIES_METHODS
                if isinstance(func.value, ast.Attribute) and func.value.attr in ("str", "dt"):
                    allowed = _STR_METHODS if func.value.attr == "str" else _DT_METHODS
                if func.attr not in allowed:
                    raise self._fail(f"method .{func.attr}()")
                self._check(func.value)
            else:
                raise self._fail("this call")
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                self._check(arg)
        elif isinstance(node, ast.Attribute):
            if node.attr in ("str", "dt") or node.attr in _DT_ATTRIBUTES:
                self._check(node.value)
            else:
                raise self._fail(f"attribute .{node.attr}")
        elif isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp)):
            if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
                raise self._fail(f"operator {type(node.op).__name__}")
            if isinstance(node, ast.Compare) and not all(
                    type(op) in _COMPARE or isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                raise self._fail("this comparison")
            for child in ast.iter_child_nodes(node):
                self._check(child)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for child in node.elts:
                self._check(child)
        elif isinstance(node, (ast.Constant, ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)):
            return
        else:
            raise self._fail(type(node).__name__)

    def evaluate(self, frame: pd.DataFrame) -> Any:
        """Evaluate over ``frame``; returns a Series aligned with it, or a scalar.

        Raises
        ------
        ConfigError
            A column the expression names is not in ``frame``, or evaluation fails.
        """
        missing = sorted(n for n in self.names if n not in frame.columns)
        if missing:
            raise ConfigError(f"{self.where}: unknown column '{missing[0]}' in {self._shown} "
                              f"(columns: {', '.join(map(str, frame.columns))})")
        try:
            return self._eval(self._tree, frame)
        except ConfigError:
            raise
        except Exception as exc:  # a type mismatch in user data/config, reported in one line
            raise ConfigError(f"{self.where}: cannot evaluate {self._shown}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None

    def _check_constant_result(self, op: ast.operator, left: Any, right: Any) -> None:
        """Refuse arithmetic on constants whose result would take long to compute or much memory to hold.

        Python's whole numbers and text have no size limit (``10 ** 10 ** 8`` computes for minutes, ``'a' * 10 **
        9`` takes a gigabyte); columns are numpy arrays of fixed width and need no check."""
        if isinstance(left, pd.Series) or isinstance(right, pd.Series):
            return
        numbers = all(isinstance(v, (int, float)) for v in (left, right))
        if isinstance(op, ast.Pow) and numbers and abs(right) > MAX_EXPONENT:
            raise ConfigError(f"{self.where}: exponent {right:g} is too large (at most {MAX_EXPONENT}) in "
                              f"{self._shown}")
        if isinstance(left, int) and isinstance(right, int):
            bits = (left.bit_length() * abs(right) if isinstance(op, ast.Pow) else
                    left.bit_length() + right.bit_length() if isinstance(op, ast.Mult) else 0)
            if bits > MAX_INTEGER_BITS:
                raise ConfigError(f"{self.where}: a number in {self._shown} would have more than "
                                  f"{MAX_INTEGER_BITS} bits")
        if isinstance(op, ast.Mult) and any(isinstance(v, (str, list, tuple)) for v in (left, right)):
            size = next((len(v) for v in (left, right) if isinstance(v, (str, list, tuple))), 0)
            times = next((v for v in (left, right) if isinstance(v, int)), 1)
            if size * max(times, 0) > MAX_CONSTANT_CHARS:
                raise ConfigError(f"{self.where}: text or list in {self._shown} would be longer than "
                                  f"{MAX_CONSTANT_CHARS:,}")

    def _eval(self, node: ast.AST, frame: pd.DataFrame) -> Any:
        ev = lambda n: self._eval(n, frame)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            constants = {"True": True, "False": False, "None": None}
            return constants[node.id] if node.id in constants else frame[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            self._check_constant_result(node.op, left, right)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return ~_as_bool(v) if isinstance(v, pd.Series) else not v
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BoolOp):
            values = [_as_bool(ev(v)) for v in node.values]
            out = values[0]
            for v in values[1:]:
                out = (out & v) if isinstance(node.op, ast.And) else (out | v)
            return out
        if isinstance(node, ast.Compare):
            left, out = ev(node.left), None
            for op, right_node in zip(node.ops, node.comparators):
                right = ev(right_node)
                if isinstance(op, (ast.In, ast.NotIn)):
                    res = left.isin(right) if isinstance(left, pd.Series) else left in right
                    res = ~res if isinstance(op, ast.NotIn) else res
                else:
                    res = _COMPARE[type(op)](left, right)
                out = res if out is None else (_as_bool(out) & _as_bool(res))
                left = right
            return out
        if isinstance(node, ast.IfExp):
            return _where(ev(node.test), ev(node.body), ev(node.orelse))
        if isinstance(node, ast.Attribute):
            return getattr(ev(node.value), node.attr)
        if isinstance(node, ast.Call):
            args = [ev(a) for a in node.args]
            kwargs = {k.arg: ev(k.value) for k in node.keywords}
            if isinstance(node.func, ast.Name):
                if node.func.id == "col":
                    return frame[str(args[0])]
                return FUNCTIONS[node.func.id](*args, **kwargs)
            target = ev(node.func.value)
            if node.func.attr == "astype":
                args = [_ASTYPE.get(a, a) if isinstance(a, str) else a for a in args]
            return getattr(target, node.func.attr)(*args, **kwargs)
        raise self._fail(type(node).__name__)  # pragma: no cover - _check rejects it first
