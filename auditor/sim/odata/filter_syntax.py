"""`$filter` syntax: the tokenizer, the syntax tree and the recursive-descent parser.

Apart from the evaluation so that the flow API's routes can parse and inspect a filter's
tree without a table to evaluate it on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditor.sim.odata.errors import ODataError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<punct>[(),])
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<alias>@[A-Za-z_]\w*)
  | (?P<name>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)
    """,
    re.VERBOSE,
)

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = ("startswith", "endswith", "contains")


@dataclass(frozen=True)
class Literal:
    """A constant: kind is string, int, float, bool, null, guid, datetime or date."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Column:
    """A property of the row."""

    name: str


@dataclass(frozen=True)
class Compare:
    """`left op right` with op one of eq, ne, gt, ge, lt, le."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Call:
    """A string function such as `startswith(col,'x')`."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True)
class BoolOp:
    """`and` / `or` of two conditions."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """`not condition`."""

    operand: Node


Operand = Literal | Column
Node = Compare | Call | BoolOp | Not | Column | Literal


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _literal(kind: str, text: str) -> Literal:
    if kind == "string":
        return Literal("string", text[1:-1].replace("''", "'"))
    if kind == "guid":
        return Literal("guid", text.lower())
    if kind == "datetime":
        return Literal("datetime", _parse_datetime(text))
    if kind == "date":
        return Literal("date", pd.Timestamp(text, tz="UTC"))
    if kind == "number":
        if re.fullmatch(r"-?\d+", text):
            return Literal("int", int(text))
        return Literal("float", float(text))
    raise AssertionError(kind)


def _parse_datetime(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def tokenize(text: str, aliases: Mapping[str, str] | None = None) -> list[_Token]:
    """Split a `$filter` into tokens; `@p` aliases are replaced by their literal."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "alias":
            alias = (aliases or {}).get(value)
            if alias is None:
                raise ODataError(f"The parameter alias '{value}' is not defined in the query.")
            inner = [t for t in tokenize(alias) if t.kind != "ws"]
            if len(inner) != 1 or inner[0].kind in ("punct", "name", "alias"):
                raise ODataError(f"The value of parameter alias '{value}' is not a literal.")
            tokens.append(_Token(inner[0].kind, inner[0].text, match.start()))
        elif kind != "ws":
            tokens.append(_Token(kind, value, match.start()))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the OData boolean expression grammar (or < and < not)."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0

    def error(self, what: str) -> ODataError:
        pos = self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text)
        return ODataError(f"Syntax error: {what} at position {pos} in '{self.text}'.")

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text == word:
            self.i += 1
            return True
        return False

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == char:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() is not None:
            raise self.error(f"unexpected '{self.tokens[self.i].text}'")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.keyword("or"):
            node = BoolOp("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.keyword("and"):
            node = BoolOp("and", node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.keyword("not"):
            return Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_primary()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in COMPARISONS:
            self.i += 1
            if not isinstance(left, Literal | Column):
                raise self.error(f"'{token.text}' needs a property or a literal on its left")
            right = self.parse_primary()
            if not isinstance(right, Literal | Column):
                raise self.error(f"'{token.text}' needs a property or a literal on its right")
            return Compare(token.text, left, right)
        return left

    def parse_primary(self) -> Node:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of expression")
        if self.punct("("):
            node = self.parse_or()
            if not self.punct(")"):
                raise self.error("')' expected")
            return node
        if token.kind == "name":
            self.i += 1
            if token.text in ("true", "false"):
                return Literal("bool", token.text == "true")
            if token.text == "null":
                return Literal("null", None)
            if token.text in ("and", "or", "not", *COMPARISONS):
                raise self.error(f"unexpected '{token.text}'")
            if self.punct("("):
                return self.parse_call(token.text)
            return Column(token.text)
        if token.kind in ("string", "guid", "datetime", "date", "number"):
            self.i += 1
            return _literal(token.kind, token.text)
        raise self.error(f"unexpected '{token.text}'")

    def parse_call(self, name: str) -> Node:
        if name not in FUNCTIONS:
            raise ODataError(f"An unknown function with name '{name}' was found.")
        args: list[Operand] = []
        while True:
            arg = self.parse_primary()
            if not isinstance(arg, Literal | Column):
                raise self.error(f"'{name}' takes properties and literals")
            args.append(arg)
            if self.punct(")"):
                break
            if not self.punct(","):
                raise self.error("',' or ')' expected")
        if len(args) != 2:
            raise ODataError(f"The function '{name}' takes 2 arguments, {len(args)} given.")
        return Call(name, tuple(args))


def parse_filter(text: str, aliases: Mapping[str, str] | None = None) -> Node:
    """Parse a `$filter` expression; raises ODataError (400) on bad syntax."""
    if not text.strip():
        raise ODataError("The $filter expression is empty.")
    return _Parser(text, tokenize(text, aliases)).parse()


def columns_of(node: Node) -> set[str]:
    """Every property named in an expression."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, Compare):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, Call):
        return set().union(*(columns_of(a) for a in node.args))
    if isinstance(node, BoolOp):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, Not):
        return columns_of(node.operand)
    return set()
