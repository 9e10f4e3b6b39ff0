"""Server-side prepared statements for the few hottest statements (the DM send and its ack).

psycopg2 sends a query's text each time and PostgreSQL parses and plans it on every call: for
the message append (one large CTE) that planning is a large share of PostgreSQL's CPU per
message. Here a named statement is `PREPARE`d once per connection, in the same round trip as
its first `EXECUTE`, and later calls send only `EXECUTE name(<values>)` (values still
interpolated by psycopg2, so there is no protocol change and no extra round trip).

What a connection has prepared is tracked on the aiopg connection object (a new or replaced
connection starts empty). PostgreSQL's prepared statements are not transactional: a PREPARE
stays when its transaction rolls back, and is absent when it never ran. So when a round trip
that carried a PREPARE fails, or PostgreSQL says a name is missing or already there, the
connection's record is marked unsure and, before its next prepared statement, re-read from
`pg_prepared_statements` (one extra round trip, after an error only). A DISCARD / DEALLOCATE
sent through the store interface marks it unsure too.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiopg
import psycopg2.errors

InvalidSqlStatementName = psycopg2.errors.InvalidSqlStatementName
DuplicatePreparedStatement = psycopg2.errors.DuplicatePreparedStatement

_PARAM = re.compile(r"%\((\w+)\)s")
# Statements that drop prepared statements (checked at the start of a plain query only).
_RESETS = re.compile(r"\s*(DISCARD|DEALLOCATE)\b", re.IGNORECASE)

RunOn = Callable[[aiopg.Connection, str, Any, str], Awaitable[Any]]


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str  # as written, with %(name)s parameters
    prepare: str  # PREPARE "name" AS <sql with $n>
    execute: str  # EXECUTE "name"(%(a)s, %(b)s, ...)


@dataclass
class _ConnState:
    names: set[str] = field(default_factory=set)
    # False: `names` may differ from the server's; re-read before the next prepared statement.
    sure: bool = True


_statements: dict[str, Statement] = {}
_states: weakref.WeakKeyDictionary[aiopg.Connection, _ConnState] = weakref.WeakKeyDictionary()


def statement(name: str, sql: str) -> Statement:
    """The statement `name` for `sql`, converted once: each distinct `%(param)s` becomes `$n`
    (the same parameter used twice is one `$n`). Parameter types are inferred by PostgreSQL
    from where they are used: the SQL casts the ones it cannot infer."""
    found = _statements.get(name)
    if found is not None:
        if found.sql is not sql and found.sql != sql:
            raise ValueError(f"prepared statement {name!r} used with two different SQL texts")
        return found
    if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
        raise ValueError(f"bad prepared statement name {name!r}")
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    body = _PARAM.sub(number, sql)
    if "%s" in body:
        raise ValueError(f"prepared statement {name!r}: only %(name)s parameters are supported")
    args = ", ".join(f"%({param})s" for param in order)
    stmt = Statement(
        name=name,
        sql=sql,
        prepare=f'PREPARE "{name}" AS {body}',
        execute=f'EXECUTE "{name}"({args})' if args else f'EXECUTE "{name}"',
    )
    _statements[name] = stmt
    return stmt


def _state(conn: aiopg.Connection) -> _ConnState:
    state = _states.get(conn)
    if state is None:
        state = _states[conn] = _ConnState()
    return state


def note_plain(conn: aiopg.Connection, sql: str) -> None:
    """A plain query on `conn`: if it may drop prepared statements, stop trusting the record."""
    if _RESETS.match(sql):
        state = _states.get(conn)
        if state is not None:
            state.sure = False


async def run(
    conn: aiopg.Connection,
    stmt: Statement,
    params: Mapping[str, Any],
    mode: str,
    begin: str | None,
    run_on: RunOn,
) -> Any:
    """Run `stmt` on `conn` (preparing it first if this connection has not), with `begin`
    (BEGIN ...) in front when it opens a transaction. One round trip, except after an error."""
    state = _state(conn)
    if not state.sure:
        rows = await run_on(conn, "SELECT name FROM pg_prepared_statements", None, "all")
        state.names = {row["name"] for row in rows}
        state.sure = True
    preparing = stmt.name not in state.names
    sql = f"{stmt.prepare}; {stmt.execute}" if preparing else stmt.execute
    if begin is not None:
        sql = f"{begin}; {sql}"
    try:
        result = await run_on(conn, sql, params, mode)
    except (InvalidSqlStatementName, DuplicatePreparedStatement):
        state.sure = False
        raise
    except BaseException:
        # The PREPARE may or may not have run (a cancel, a failed EXECUTE after it).
        if preparing:
            state.sure = False
        raise
    if preparing:
        state.names.add(stmt.name)
    return result
