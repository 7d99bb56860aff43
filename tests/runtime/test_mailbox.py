import anyio
import anyio.lowlevel
import pytest

from runtime.errors import Overloaded
from runtime.mailbox import OwnerMailboxes


async def test_one_owner_runs_in_arrival_order_and_owners_run_in_parallel():
    mailboxes = OwnerMailboxes(capacity=100)
    order: list[str] = []
    running = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    async def work(owner: str, i: int) -> None:
        running[owner] += 1
        peak[owner] = max(peak[owner], running[owner])
        await anyio.sleep(0.001 * (5 - i % 5))
        order.append(f"{owner}{i}")
        running[owner] -= 1

    async with anyio.create_task_group() as tg:
        for i in range(10):
            for owner in ("a", "b"):
                tg.start_soon(mailboxes.run, owner, lambda o=owner, n=i: work(o, n))
                await anyio.lowlevel.checkpoint()
    assert [x for x in order if x[0] == "a"] == [f"a{i}" for i in range(10)]
    assert peak == {"a": 1, "b": 1}
    assert mailboxes.active == 0  # idle lanes are dropped


async def test_a_full_mailbox_refuses_instead_of_growing():
    mailboxes = OwnerMailboxes(capacity=2)
    gate = anyio.Event()
    results: list[object] = []

    async def call() -> None:
        try:
            results.append(await mailboxes.run("a", gate.wait))
        except Overloaded as exc:
            results.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()  # two held in the lane, the third refused
        assert mailboxes.depth("a") == 2
        gate.set()
    assert sum(isinstance(r, Overloaded) for r in results) == 1
    with pytest.raises(ValueError):
        OwnerMailboxes(0)
