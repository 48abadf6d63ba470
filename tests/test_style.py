# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""House style checks that read the package's source: every public function and method is fully annotated."""

import ast
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parents[1] / "alhubert"


def _is_public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def unannotated(source: str) -> list[str]:
    """`name (line): what is missing` for each public function or method of `source` (a module's text) that lacks an
    annotation on a parameter (`self` and `cls` excepted) or its return type (`__init__` excepted). Functions nested
    in functions and members of private classes are not public."""
    problems = []

    def visit(node: ast.AST, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and _is_public(child.name):
                visit(child, in_class=True)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_public(child.name):
                arguments = child.args
                parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
                if in_class and parameters and parameters[0].arg in ("self", "cls"):
                    parameters = parameters[1:]
                parameters += [extra for extra in (arguments.vararg, arguments.kwarg) if extra is not None]
                missing = [parameter.arg for parameter in parameters if parameter.annotation is None]
                if child.returns is None and child.name != "__init__":
                    missing.append("return")
                if missing:
                    problems.append(f"{child.name} (line {child.lineno}): {', '.join(missing)}")

    visit(ast.parse(source), in_class=False)
    return problems


def test_the_checker_finds_missing_annotations():
    source = """
def typed(a: int, *rest: str, flag: bool = False, **options: object) -> None: ...
def untyped_parameter(a, b: int) -> int: ...
def no_return(a: int): ...
def _private(a): ...
class Public:
    def __init__(self, value: int): ...
    def method(self, value): ...
    @classmethod
    def build(cls, **kwargs) -> "Public": ...
    def _helper(self, value): ...
class _Private:
    def method(self, value): ...
"""
    assert unannotated(source) == [
        "untyped_parameter (line 3): a",
        "no_return (line 4): return",
        "method (line 8): value, return",
        "build (line 10): kwargs",
    ]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_public_functions_are_annotated(path):
    assert unannotated(path.read_text(encoding="utf-8")) == []
