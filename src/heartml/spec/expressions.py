"""Engineered features as expressions over raw columns: a whitelisted parser and its evaluator.

The grammar (a subset of Python's expression syntax, parsed by `ast` and never evaluated by
Python):

    expr  := expr (+ | - | * | /) expr | - expr | + expr | ( expr ) | number | column
           | bins(expr, [number, number, ...])

`bins(x, [e1, ..., ek])` counts the edges that x exceeds: 0 for x <= e1, 1 for e1 < x <= e2, ...,
k for x > ek (right-closed bins, as pandas.cut(right=True)); a missing x gives a missing value.
Anything else (attribute access, subscripts, other calls, comparisons, names that are not raw
columns, keyword arguments, strings, booleans) is refused with the offending token.

The parsed tree is the one source for both the numpy evaluation (training, batch) and the ONNX
graph (heartml.onnx_features); both apply the same IEEE float64 operations in the same order, so
they agree bit for bit.
"""

from __future__ import annotations

import ast
import itertools
import math
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

FUNCTIONS = ("bins",)  # the only calls an expression may make


class ExpressionError(ValueError):
    """An expression outside the grammar; `token` is the offending piece of text."""

    def __init__(self, message: str, token: str) -> None:
        super().__init__(message)
        self.token = token


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class Col:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Bins:
    operand: Node
    edges: tuple[float, ...]


Node: TypeAlias = Const | Col | Neg | BinOp | Bins

_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}


def parse(text: str, columns: frozenset[str] | set[str]) -> Node:
    """Parse `text` into a tree over `columns`; ExpressionError names the offending token."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty", str(text))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        source = (exc.text or text).strip()
        # From where the parser gave up; when it ran off the end, the last piece it read.
        token = source.split()[-1] if source else source
        if exc.offset and exc.offset > 0 and exc.text is not None:
            token = exc.text[exc.offset - 1 :].strip() or token
        raise ExpressionError(f"malformed expression ({exc.msg})", token) from None
    source = text.strip()
    node = _convert(tree.body, source, columns)
    if not uses_columns(node):
        raise ExpressionError("the expression uses no column", source)
    return node


def _token(node: ast.AST, source: str) -> str:
    return ast.get_source_segment(source, node) or type(node).__name__


def _number(node: ast.AST, source: str) -> float:
    """A literal number (optionally negated), finite; booleans and strings are not numbers."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if not isinstance(node, ast.Constant) or type(node.value) not in (int, float):
        raise ExpressionError("expected a number", _token(node, source))
    value = sign * float(node.value)  # type: ignore[arg-type]  # int or float, checked above
    if not math.isfinite(value):
        raise ExpressionError("the number is not finite", _token(node, source))
    return value


def _convert(node: ast.AST, source: str, columns: frozenset[str] | set[str]) -> Node:
    if isinstance(node, ast.Constant):
        return Const(_number(node, source))
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id} is a function: call it as {node.id}(...)", node.id)
        if node.id not in columns:
            raise ExpressionError(f"unknown column {node.id!r}", node.id)
        return Col(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _convert(node.operand, source, columns)
        return Neg(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return BinOp(
            _OPERATORS[type(node.op)],
            _convert(node.left, source, columns),
            _convert(node.right, source, columns),
        )
    if isinstance(node, ast.Call):
        return _call(node, source, columns)
    if isinstance(node, ast.BinOp):
        raise ExpressionError("operator not allowed (only + - * /)", _operator_token(node, source))
    raise ExpressionError("not allowed in an expression", _token(node, source))


def _operator_token(node: ast.BinOp, source: str) -> str:
    left_end = node.left.end_col_offset or 0
    right_start = node.right.col_offset
    between = source[left_end:right_start].strip()
    return between or _token(node, source)


def _call(node: ast.Call, source: str, columns: frozenset[str] | set[str]) -> Node:
    if not isinstance(node.func, ast.Name):
        raise ExpressionError("only bins(...) may be called", _token(node.func, source))
    if node.func.id not in FUNCTIONS:
        raise ExpressionError(
            f"unknown function {node.func.id!r} (allowed: {', '.join(FUNCTIONS)})", node.func.id
        )
    if node.keywords:
        raise ExpressionError("bins takes no keyword arguments", _token(node.keywords[0], source))
    if len(node.args) != 2:
        raise ExpressionError(
            "bins takes two arguments: bins(x, [edge, ...])", _token(node, source)
        )
    operand, edges_node = node.args
    if not isinstance(edges_node, ast.List | ast.Tuple) or not edges_node.elts:
        raise ExpressionError(
            "bins needs a list of edges, e.g. [40, 50]", _token(edges_node, source)
        )
    edges = tuple(_number(element, source) for element in edges_node.elts)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ExpressionError("bin edges must increase", _token(edges_node, source))
    return Bins(_convert(operand, source, columns), edges)


def uses_columns(node: Node) -> bool:
    return bool(columns_of(node))


def columns_of(node: Node) -> set[str]:
    """The raw columns an expression reads."""
    if isinstance(node, Col):
        return {node.name}
    if isinstance(node, Const):
        return set()
    if isinstance(node, Neg | Bins):
        return columns_of(node.operand)
    return columns_of(node.left) | columns_of(node.right)


def unparse(node: Node) -> str:
    """A canonical text of the tree (fully parenthesised), for messages and hashes."""
    if isinstance(node, Const):
        return repr(node.value)
    if isinstance(node, Col):
        return node.name
    if isinstance(node, Neg):
        return f"-({unparse(node.operand)})"
    if isinstance(node, Bins):
        return f"bins({unparse(node.operand)}, [{', '.join(repr(e) for e in node.edges)}])"
    return f"({unparse(node.left)} {node.op} {unparse(node.right)})"


def evaluate(node: Node, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The expression on float64 column vectors (NaN = missing), elementwise, in tree order."""
    if isinstance(node, Const):
        return np.float64(node.value)  # type: ignore[return-value]  # broadcasts like a column
    if isinstance(node, Col):
        return columns[node.name]
    if isinstance(node, Neg):
        return np.negative(evaluate(node.operand, columns))
    if isinstance(node, Bins):
        values = np.asarray(evaluate(node.operand, columns), dtype=np.float64)
        count = np.zeros(values.shape, dtype=np.float64)
        for edge in node.edges:
            count += values > edge
        return np.where(np.isnan(values), np.nan, count)
    left, right = evaluate(node.left, columns), evaluate(node.right, columns)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if node.op == "+":
            return np.add(left, right)
        if node.op == "-":
            return np.subtract(left, right)
        if node.op == "*":
            return np.multiply(left, right)
        return np.divide(left, right)
