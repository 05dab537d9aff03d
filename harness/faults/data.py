"""Data faults: NULL fields in inventory rows, written through the harness's own connection.

The manual's root cause 3. The fault remembers the row as it was and heal puts it back (and
forgets any quarantine the resilient shop recorded for it), so the catalogue is whole again.
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


FAULTS = (NullFields,)
