"""Order checkout saga: reserve stock, charge the card, ship.

Runs twice on the embedded memory store (no Redis needed): once where everything
succeeds, once where shipping fails and the completed steps are undone in reverse.

    python examples/checkout.py
"""

from __future__ import annotations

from decimal import Decimal

from reactor import Input, Reactor, step

LOG: list[str] = []


def say(line: str) -> None:
    LOG.append(line)
    print(f"  {line}")


class Checkout(Reactor):
    """Reserve stock, charge the card, ship; undo in reverse when a step fails."""

    order_id = Input(schema={"type": "string"})
    sku = Input(schema={"type": "string"})
    quantity = Input(schema={"type": "integer", "minimum": 1})
    card = Input(schema={"type": "string", "pattern": "^[0-9]{4}$"})
    ship_to = Input(schema={"type": "string"})

    @step
    def reserve_stock(self, sku: str, quantity: int) -> str:
        say(f"run  reserve_stock: {quantity} x {sku}")
        return f"rsv-{sku}-{quantity}"

    @reserve_stock.undo
    def release_stock(self, result: str) -> None:
        say(f"undo reserve_stock: released {result}")

    @step
    def price(self, sku: str, quantity: int) -> Decimal:
        return Decimal("19.90") * quantity

    @step(retries=2, base_delay=0.01)
    def charge_card(self, card: str, price: Decimal, reserve_stock: str, context) -> str:  # type: ignore[no-untyped-def]
        say(f"run  charge_card: {price} EUR on card *{card} (key {context.idempotency_key[-26:]})")
        return f"pay-{card}-{price}"

    @charge_card.undo
    def refund(self, result: str, price: Decimal) -> None:
        say(f"undo charge_card: refunded {price} EUR ({result})")

    @step
    def ship(self, ship_to: str, charge_card: str, order_id: str) -> str:
        if ship_to == "Atlantis":
            say("run  ship: carrier refuses the address")
            raise ValueError(f"cannot ship to {ship_to}")
        say(f"run  ship: {order_id} to {ship_to}")
        return f"trk-{order_id}"

    @ship.compensate
    def ship_failed(self, error: Exception, order_id: str) -> None:
        say(f"compensate ship: notified support about {order_id}: {error}")


def main() -> None:
    order = {"sku": "teapot", "quantity": 2, "card": "4242"}
    print("1) a checkout that succeeds")
    ok = Checkout.run(order_id="A-1", ship_to="Lisbon", **order)
    print(f"  -> {ok.status.value}: tracking {ok.result}\n")

    print("2) a checkout whose shipping fails")
    failed = Checkout.run(order_id="A-2", ship_to="Atlantis", **order)
    assert failed.error is not None
    print(f"  -> {failed.status.value} at step {failed.error.step!r}: {failed.error.message}")
    print(f"     rollback problems: {failed.error.rollback_failures or 'none'}")


if __name__ == "__main__":
    main()
