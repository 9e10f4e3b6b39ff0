"""The database interface every store module uses: fetch / fetchrow / fetchval / execute /
transaction. aiopg (psycopg2) sits behind it; queries use psycopg2 `%(name)s` parameters.

A few hot statements run as server-side prepared statements (`fetchrow_prepared` and kin;
server/store/prepared.py): PostgreSQL plans them once per connection instead of per call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiopg
import orjson
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from server.ops_metrics import timed_block
from server.store import prepared

log = logging.getLogger(__name__)

psycopg2.extras.register_uuid()
psycopg2.extensions.register_adapter(dict, lambda value: psycopg2.extras.Json(value, dumps=_dumps))

Params = Mapping[str, Any] | Sequence[Any] | None
Row = dict[str, Any]
AfterCommit = Callable[[], Awaitable[None]]
CommitStatement = Callable[[], tuple[str, Params]]

UniqueViolation = psycopg2.errors.UniqueViolation
ForeignKeyViolation = psycopg2.errors.ForeignKeyViolation
DataError = psycopg2.DataError
# Worth retrying the whole transaction for.
DeadlockDetected = psycopg2.errors.DeadlockDetected
SerializationFailure = psycopg2.errors.SerializationFailure


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def jsonb(value: Any) -> psycopg2.extras.Json:
    """Wrap any JSON-serialisable value (lists included) for a jsonb column."""
    return psycopg2.extras.Json(value, dumps=_dumps)


class _Queries:
    """fetch / fetchrow / fetchval / execute over one cursor factory."""

    async def _run(self, sql: str, params: Params, mode: str) -> Any:
        raise NotImplementedError

    async def fetch(self, sql: str, params: Params = None) -> list[Row]:
        return await self._run(sql, params, "all")

    async def fetchrow(self, sql: str, params: Params = None) -> Row | None:
        return await self._run(sql, params, "one")

    async def fetchrow_one(self, sql: str, params: Params = None) -> Row:
        """fetchrow for a statement that always yields a row: a SELECT without FROM, an INSERT
        ... RETURNING, an UPDATE ... RETURNING of a row the caller holds locked."""
        row = await self._run(sql, params, "one")
        if row is None:
            raise LookupError(f"no row where one was certain: {sql.strip()[:80]!r}")
        return row

    async def fetchval(self, sql: str, params: Params = None) -> Any:
        row = await self._run(sql, params, "one")
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, params: Params = None) -> int:
        return await self._run(sql, params, "count")

    # Prepared statements: `name` names `sql` (one text per name; `%(name)s` parameters only).
    async def _run_prepared(self, name: str, sql: str, params: Mapping[str, Any], mode: str) -> Any:
        raise NotImplementedError

    async def fetchrow_prepared(self, name: str, sql: str, params: Mapping[str, Any]) -> Row | None:
        return await self._run_prepared(name, sql, params, "one")

    async def fetch_prepared(self, name: str, sql: str, params: Mapping[str, Any]) -> list[Row]:
        return await self._run_prepared(name, sql, params, "all")

    async def execute_prepared(self, name: str, sql: str, params: Mapping[str, Any]) -> int:
        return await self._run_prepared(name, sql, params, "count")


async def _run_on(conn: aiopg.Connection, sql: str, params: Params, mode: str) -> Any:
    prepared.note_plain(conn, sql)
    # Plain tuples zipped with the column names: the same dicts RealDictCursor gave (a later
    # column of the same name wins, in the first one's place), built in C instead of one
    # Python-level __setitem__ per column, and copied once less (profiled: a fifth of a page
    # of posts went there).
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        if mode == "count":
            return cur.rowcount
        if mode == "one":
            row = await cur.fetchone()
            return dict(zip(_names(cur), row, strict=True)) if row is not None else None
        rows = await cur.fetchall()
        if not rows:
            return []
        names = _names(cur)
        return [dict(zip(names, row, strict=True)) for row in rows]


def _names(cur: Any) -> list[str]:
    return [column[0] for column in cur.description]


class Transaction(_Queries):
    """One open transaction.

    - `after_commit(callback)`: work that runs only once the transaction has committed.
    - `with_commit(statement)`: a statement sent in the same round trip as COMMIT (built by
      `statement()` at commit time, so it sees everything staged until then); if it fails, the
      whole transaction rolls back. The event sink writes its outbox row this way.
    - `local`: per-transaction state of the services that stage work in it.
    """

    def __init__(self, conn: aiopg.Connection, begin: str = "BEGIN") -> None:
        self._conn = conn
        self._begin = begin
        self._begun = False
        self._after_commit: list[AfterCommit] = []
        self._commit_statements: list[CommitStatement] = []
        self.local: dict[str, Any] = {}

    async def _run(self, sql: str, params: Params, mode: str) -> Any:
        if not self._begun:
            # BEGIN travels with the first statement: one round trip less per transaction.
            prepared.note_plain(self._conn, sql)
            self._begun = True
            sql = f"{self._begin}; {sql}"
        return await _run_on(self._conn, sql, params, mode)

    async def _run_prepared(self, name: str, sql: str, params: Mapping[str, Any], mode: str) -> Any:
        stmt = prepared.statement(name, sql)
        if self._begun:
            # A statement the connection lost (someone ran DISCARD ALL on it outside this
            # interface) fails this transaction; the connection prepares it again next time.
            return await prepared.run(self._conn, stmt, params, mode, None, _run_on)
        self._begun = True
        try:
            return await prepared.run(self._conn, stmt, params, mode, self._begin, _run_on)
        except prepared.InvalidSqlStatementName:
            # The transaction's first statement: nothing is lost, so start it again (the
            # connection's record is re-read from the server first). The DM send and its ack
            # open their transactions with their prepared statement.
            await _run_on(self._conn, "ROLLBACK", None, "count")
            return await prepared.run(self._conn, stmt, params, mode, self._begin, _run_on)

    def after_commit(self, callback: AfterCommit) -> None:
        self._after_commit.append(callback)

    def with_commit(self, statement: CommitStatement) -> None:
        self._commit_statements.append(statement)

    def _commit_sql(self, cur: Any) -> bytes | None:
        """What ends the transaction in one round trip (None: nothing was sent, nothing to do)."""
        parts = [cur.mogrify(sql, params) for sql, params in (s() for s in self._commit_statements)]
        if not self._begun:
            if not parts:
                return None
            parts.insert(0, self._begin.encode())
            self._begun = True
        return b"; ".join([*parts, b"COMMIT"])


class Database(_Queries):
    def __init__(self, pool: aiopg.Pool, dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn

    @classmethod
    async def connect(cls, dsn: str, *, minsize: int = 1, maxsize: int = 10) -> Database:
        pool = await aiopg.create_pool(
            dsn, minsize=minsize, maxsize=maxsize, timeout=30, options="-c timezone=UTC"
        )
        return cls(pool, dsn)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Close the pool once its connections are back; a connection still held after
        `timeout_s` (a task that never finished) is terminated rather than waited on forever."""
        self.pool.close()
        try:
            await asyncio.wait_for(self.pool.wait_closed(), timeout_s)
        except TimeoutError:
            log.warning("database connections still in use at shutdown: terminated")
            self.pool.terminate()
            await self.pool.wait_closed()

    async def ping(self) -> None:
        await self.fetchval("SELECT 1")

    @property
    def in_use(self) -> int:
        return self.pool.size - self.pool.freesize

    async def _run(self, sql: str, params: Params, mode: str) -> Any:
        async with timed_block("postgresql", "query"), self.pool.acquire() as conn:
            return await _run_on(conn, sql, params, mode)

    async def _run_prepared(self, name: str, sql: str, params: Mapping[str, Any], mode: str) -> Any:
        stmt = prepared.statement(name, sql)
        async with timed_block("postgresql", "query"), self.pool.acquire() as conn:
            try:
                return await prepared.run(conn, stmt, params, mode, None, _run_on)
            except prepared.InvalidSqlStatementName:
                # Outside a transaction nothing is lost: prepare it again and retry once.
                return await prepared.run(conn, stmt, params, mode, None, _run_on)

    @asynccontextmanager
    async def transaction(self, *, isolation: str | None = None) -> AsyncIterator[Transaction]:
        async with timed_block("postgresql", "transaction"), self.pool.acquire() as conn:
            async with conn.cursor() as cur:
                tx = Transaction(
                    conn, "BEGIN" + (f" ISOLATION LEVEL {isolation}" if isolation else "")
                )
                try:
                    yield tx
                    commit = tx._commit_sql(cur)
                    if commit is not None:
                        # aiopg annotates the query as str; psycopg2 sends mogrified bytes as is.
                        await cur.execute(commit)  # type: ignore[arg-type]
                except BaseException:
                    if not tx._begun:
                        raise
                    try:
                        await cur.execute("ROLLBACK")
                    except Exception:
                        # aiopg closes the connection when a query is cancelled; the server
                        # rolls back on its own. Keep the original error (a CancelledError
                        # must stay one, or the cancelled task never learns it was cancelled).
                        log.debug("rollback on a closed connection", exc_info=True)
                    raise
        for callback in tx._after_commit:
            try:
                await callback()
            except Exception:
                log.exception("after-commit callback failed")


Queries = _Queries
