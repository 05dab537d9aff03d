"""Data faults, through the harness's own connection: NULL fields in inventory rows, a locked table.

The manual's root cause 3: the null fault remembers the row as it was and heal puts it back (and
forgets any quarantine the resilient shop recorded for it), so the catalogue is whole again.

The manual's root cause 2, a bottleneck: the lock fault opens a transaction that holds an
EXCLUSIVE lock on a table, as a long maintenance job would. Reads go on; every write to the
table waits, each holding the pooled connection it runs on, so a burst of writes exhausts a pool.
The server holds the lock on its own (LOCK, a sleep of hold_s, ROLLBACK), so it outlives the
process that injected it and ends by itself after hold_s at most. The holding session carries a
name of its own (application_name), so a heal, also from the record in another process, ends it
by that name; ending the session is what releases the lock, nothing written.
"""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg import sql
from pydantic import Field

from harness.datastores import connect_database
from harness.errors import HarnessError
from harness.faults.base import Fault, Params, first_line
from harness.view import StackView

FIELDS = ("name", "price_cents", "stock")
LOCK_TIMEOUT = "3s"  # the fault's own wait for the lock (a conflicting one held): then it does not land


class NullParams(Params):
    sku: str = Field(default="sku-5", min_length=1, max_length=64)
    fields: list[Literal["name", "price_cents", "stock"]] = Field(default=["price_cents"], min_length=1)


class NullFields(Fault):
    """Columns of one product row become NULL."""

    name = "data.null_fields"
    family = "data"
    proves = "the product row read back from Postgres has the chosen fields NULL"
    description = "set fields of an inventory product row to NULL; heal restores the row"
    capability = "products"  # holds the shop's products table
    Params = NullParams
    params: NullParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.original: dict[str, Any] | None = None

    def _apply(self) -> None:
        with connect_database(self.stack, autocommit=True) as conn:
            row = conn.execute("SELECT name, price_cents, stock FROM products WHERE sku = %s",
                               [self.params.sku]).fetchone()
            if row is None:
                raise HarnessError(f"no product {self.params.sku!r} to corrupt: use one of sku-1..sku-5")
            self.original = dict(zip(FIELDS, row))
            assignments = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(f)) for f in self.params.fields)
            conn.execute(sql.SQL("UPDATE products SET {} WHERE sku = %s").format(assignments), [self.params.sku])

    def _landed(self) -> bool:
        with connect_database(self.stack, autocommit=True) as conn:
            row = conn.execute("SELECT name, price_cents, stock FROM products WHERE sku = %s",
                               [self.params.sku]).fetchone()
        return row is not None and all(dict(zip(FIELDS, row))[f] is None for f in self.params.fields)

    def undo_state(self) -> dict[str, Any]:
        if self.original is None:
            return {}
        return {"sku": self.params.sku, "row": self.original}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Restores the row in the run's database, at its port now. A database that does not
        answer is a failed heal (raised), never a healed one: the row stays corrupt."""
        if not state:
            return
        try:
            with connect_database(stack, autocommit=True) as conn:
                conn.execute(
                    "UPDATE products SET name = COALESCE(name, %s), price_cents = COALESCE(price_cents, %s), "
                    "stock = COALESCE(stock, %s) WHERE sku = %s",
                    [state["row"]["name"], state["row"]["price_cents"], state["row"]["stock"], state["sku"]],
                )
                conn.execute("DELETE FROM quarantine WHERE sku = %s", [state["sku"]])
        except psycopg.OperationalError as exc:
            raise HarnessError(f"could not restore product {state['sku']}: its database did not answer "
                               f"({first_line(exc)})") from None


class LockParams(Params):
    table: str = Field(default="orders", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    hold_s: int = Field(default=60, ge=1, le=600)  # the lock's own bound, should no heal ever come


def holder_name(table: str) -> str:
    """The application_name of the session holding the lock on `table` (what a heal ends)."""
    return f"chaos-table-lock:{table}"


class TableLock(Fault):
    """An open transaction holds an EXCLUSIVE lock on one table: writes to it wait, reads go on."""

    name = "data.table_lock"
    family = "data"
    proves = "pg_locks shows the table's ExclusiveLock granted to the harness's own named session"
    description = ("an open transaction holds an EXCLUSIVE lock on a table for at most hold_s: its writes wait, "
                   "each holding its connection, reads go on; heal ends the session")
    capability = "database"
    Params = LockParams
    params: LockParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holder: psycopg.Connection | None = None

    def _apply(self) -> None:
        """The lock is taken by a statement the server runs on its own (LOCK, then a sleep of
        hold_s, then ROLLBACK), sent without waiting for it: the lock outlives this process (a
        `chaos inject` returns at once) and ends by itself after hold_s, nothing written."""
        table = self.params.table
        with connect_database(self.stack, autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
        if not (row and row[0]):
            raise HarnessError(f"no table {table!r} in the run's database to lock: name one of its tables")
        statement = sql.SQL("BEGIN; SET LOCAL lock_timeout = {}; LOCK TABLE {} IN EXCLUSIVE MODE; "
                            "SELECT pg_sleep({}); ROLLBACK").format(
            sql.Literal(LOCK_TIMEOUT), sql.Identifier(table), sql.Literal(self.params.hold_s))
        conn = connect_database(self.stack, autocommit=True)
        try:
            conn.execute("SELECT set_config('application_name', %s, false)", [holder_name(table)])
            conn.pgconn.send_query(statement.as_bytes(conn))
        except psycopg.Error as exc:
            conn.close()
            raise HarnessError(f"could not lock table {table!r}: {first_line(exc)}") from None
        self.holder = conn

    def _held(self) -> int:
        """How many sessions of the fault's name hold the table's lock now."""
        with connect_database(self.stack, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = %s "
                "AND l.relation = to_regclass(%s) AND l.mode = 'ExclusiveLock' AND l.granted",
                [holder_name(self.params.table), self.params.table]).fetchone()
        return int(row[0]) if row else 0

    def _landed(self) -> bool:
        return self._held() > 0

    def _healed(self) -> bool:
        return self._held() == 0

    def undo_state(self) -> dict[str, Any]:
        return {"holder": holder_name(self.params.table)}

    def _undo(self) -> None:
        """The record's heal ends the session (a sleeping server does not notice its client gone),
        then our end of it is closed."""
        super()._undo()
        if self.holder is not None:
            self.holder.close()
            self.holder = None

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Ends the holding session by its name in the run's database. A database that does not
        answer is a failed heal (raised): the lock may still be held."""
        if not state:
            return
        try:
            with connect_database(stack, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = %s AND pid <> pg_backend_pid()", [state["holder"]])
        except psycopg.OperationalError as exc:
            raise HarnessError(f"could not end the session {state['holder']}: its database did not answer "
                               f"({first_line(exc)})") from None


FAULTS = (NullFields, TableLock)
