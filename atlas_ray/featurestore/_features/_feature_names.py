"""Feature names: the fluent expression itself, tokenised and parsed (never ``eval``).

A feature's name is the Python expression that builds it, e.g.
``LogReturns().bitstamp().one_min().lookforward(1)`` or
``InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())``.
This module turns such a text into a small syntax tree; ``_feature`` (beside it) turns the
tree into a feature (only registered feature classes, only the fluent steps, only literal arguments).

Grammar (recursive descent, one function per rule)::

    expression := call ( "." call )*
    call       := IDENT "(" [ argument ( "," argument )* ] ")"
    argument   := expression | STRING | NUMBER
    STRING     := '"' characters without '"' or '\\' '"'
    NUMBER     := [ "-" ] digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ]

Whitespace between tokens is ignored. An integer literal (no ``.`` and no exponent) parses to ``int``,
any other number to ``float``. Errors are ``FeatureError`` naming the position (0-based) and what was
expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atlas_ray.errors import FeatureError

__all__ = ["Call", "Expression", "Literal", "format_literal", "parse_name"]

Literal = str | int | float


@dataclass(frozen=True)
class Call:
    """``name(arguments)`` at ``position`` in the text."""

    name: str
    arguments: tuple[Expression | Literal, ...]
    position: int


@dataclass(frozen=True)
class Expression:
    """A head call (the feature class) followed by fluent steps."""

    head: Call
    steps: tuple[Call, ...]
    position: int


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"[^"\\]*")
  | (?P<punct>[().,])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "ident", "string", "punct", "end"
    text: str
    position: int


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FeatureError(
                f"The feature name {text!r} has an unexpected character {text[position]!r} at position "
                f"{position}; a name is a fluent expression such as 'LogReturns().bitstamp().one_min()'."
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenise(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, expected: str) -> FeatureError:
        token = self.current
        found = "the end of the name" if token.kind == "end" else repr(token.text)
        return FeatureError(
            f"The feature name {self.text!r} cannot be parsed: expected {expected} at position "
            f"{token.position}, found {found}."
        )

    def take(self, kind: str, text: str | None = None) -> _Token:
        token = self.current
        if token.kind != kind or (text is not None and token.text != text):
            raise self.fail(repr(text) if text is not None else f"a {_DESCRIPTION[kind]}")
        self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def expression(self) -> Expression:
        position = self.current.position
        head = self.call()
        steps: list[Call] = []
        while self.at("punct", "."):
            self.take("punct", ".")
            steps.append(self.call())
        return Expression(head, tuple(steps), position)

    def call(self) -> Call:
        name = self.take("ident")
        self.take("punct", "(")
        arguments: list[Expression | Literal] = []
        if not self.at("punct", ")"):
            arguments.append(self.argument())
            while self.at("punct", ","):
                self.take("punct", ",")
                arguments.append(self.argument())
        self.take("punct", ")")
        return Call(name.text, tuple(arguments), name.position)

    def argument(self) -> Expression | Literal:
        token = self.current
        if token.kind == "string":
            self.index += 1
            return token.text[1:-1]
        if token.kind == "number":
            self.index += 1
            if re.fullmatch(r"-?\d+", token.text):
                return int(token.text)
            return float(token.text)
        if token.kind == "ident":
            return self.expression()
        raise self.fail("a feature, a string, a number or ')'")


_DESCRIPTION = {"ident": "name", "string": "string", "number": "number", "punct": "punctuation"}


def parse_name(text: str) -> Expression:
    """Parse a feature name into its syntax tree; ``FeatureError`` names the position of a mistake."""
    if not isinstance(text, str):
        raise FeatureError(f"A feature name must be a string, got {type(text).__name__} {text!r}.")
    parser = _Parser(text)
    expression = parser.expression()
    if not parser.at("end"):
        raise parser.fail("'.' or the end of the name")
    return expression


def format_literal(value: Literal) -> str:
    """A literal as it appears in a name: strings double-quoted, floats by ``repr`` (round-trips)."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        raise TypeError(f"a boolean cannot appear in a feature name: {value!r}")
    return repr(value)
