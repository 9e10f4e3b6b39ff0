"""The store is the only place with SQL (ARCHITECTURE.md, "the one rule of flow").

Imports are checked by import-linter (`lint-imports`, contracts in pyproject.toml, run by
`make test`): no database driver outside server/store. This test checks the other half: no SQL
statement written in a string literal anywhere else in server/, so a query cannot slip into a
handler or a domain action through the `Queries` interface it was handed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"
STORE = SERVER / "store"

# Statement shapes, not bare keywords. SQL is written with uppercase keywords (the store's house
# style), which prose does not use; a lowercase statement counts when it carries a query
# parameter (`%s`, `%(name)s`), so "select a product from the list" stays prose.
_SHAPES = r"""
      \bSELECT\b[\s\S]+?\bFROM\b\s+[A-Za-z_"(]
    | \bINSERT\s+INTO\b
    | \bUPDATE\b\s+[A-Za-z_."]+\s+(?:AS\s+\w+\s+|\w+\s+)?SET\b
    | \bDELETE\s+FROM\b
"""
SQL = re.compile(_SHAPES, re.VERBOSE)
SQL_ANY_CASE = re.compile(_SHAPES, re.VERBOSE | re.IGNORECASE)
PARAMETER = re.compile(r"%(?:\(\w+\))?s")


def find_sql(text: str) -> str | None:
    match = SQL.search(text)
    if match is None and PARAMETER.search(text):
        match = SQL_ANY_CASE.search(text)
    return None if match is None else " ".join(match.group(0).split())[:60]


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (module, class, function): prose, not queries."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                ids.add(id(body[0].value))
    return ids


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, statement) of every string literal (f-strings included) that holds SQL."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    for node in ast.walk(tree):  # an f-string is scanned whole, not piece by piece
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
            )
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            text = node.value
        else:
            continue
        statement = find_sql(text)
        if statement:
            found.append((node.lineno, statement))
    return found


def test_no_sql_outside_the_store():
    offenders = []
    for path in sorted(SERVER.rglob("*.py")):
        if path.is_relative_to(STORE):
            continue
        for line, statement in sql_literals(path.read_text()):
            offenders.append(f"{path.relative_to(SERVER.parent)}:{line}: {statement!r}")
    assert not offenders, "SQL outside server/store (move it into a store module):\n" + "\n".join(
        offenders
    )


def test_the_scanner_finds_statements_and_ignores_prose():
    source = '''
"""Module docstring: SELECT id FROM posts is documentation."""
A = "SELECT id, name FROM users WHERE id = %(id)s"
B = f"insert into {table} (a) values (%(a)s)"
C = """UPDATE jobs
       SET status = 'done'"""
D = "delete from sessions where id = %s"
E = "Select a product from the list, then update the card to set its price."
F = "No SQL here: select, insert, delete."
G = "delete from the list"
'''
    assert [line for line, _ in sql_literals(source)] == [3, 4, 5, 7]
