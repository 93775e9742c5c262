from reactor import Halt, Input, Reactor, interrupt, schemas, step

stock = {"A-1": 3}  # stand-ins for your services
payments = []


class Checkout(Reactor):
    name = "shop.Checkout"  # the name executions are stored under
    order_id = Input(schema={"type": "string"})
    amount = Input(schema={"type": "number"})

    @step
    def reserve(self, order_id):  # parameters are injected by name
        stock[order_id] -= 1
        return order_id

    @reserve.undo  # runs when a later step fails
    def release(self, result):
        stock[result] += 1

    @interrupt(schema=schemas.confirmation(), correlation_id=lambda order_id: f"approve-{order_id}")
    def approval(self, reserve):  # returns the request shown to a human
        return {"question": f"ship {reserve}?"}

    @step(retries=3, backoff="exponential", base_delay=0.2, timeout=30)
    async def charge(self, amount, approval, context):
        if not approval["approved"]:
            return Halt("not approved")  # ends the run HALTED, nothing undone
        payments.append((context.idempotency_key, amount))
        return {"charged": amount}


ex = Checkout.run(order_id="A-1", amount=12.5).raise_for_status()  # raises if it FAILED
print(ex.status.value, [pending.step for pending in ex.interrupts])  # paused ['approval']

# Anywhere, later -- a webhook handler, another process sharing the Redis store:
ex = Checkout.resume_by_correlation_id("approve-A-1", {"approved": True}).raise_for_status()
print(ex.status.value, ex.result, stock)  # completed {'charged': 12.5} {'A-1': 2}
