"""The one back-off loop (:func:`with_backoff`: Redis calls, the dashboard's tasks, a scraper's reconnects):
transient errors are tried again after growing pauses, others raised at once; an attempt that made progress
starts the pauses from the base again; a stop ends the waiting; a Redis call's budget ends the retries; a Redis
call whose stop is set during a back-off ends with None (no exception)."""

from __future__ import annotations

import asyncio

import pytest

from worker.errors import RedisCommandError, RedisTransientError, RedisUnavailableError
from worker.streams.retry import STOPPED, Backoff, Retrying, guarded, with_backoff


class Flaky:
    """Fails with each error of ``plan`` in turn (None: succeeds with the call's number); ``progress`` counts
    what the attempts achieved before failing (``made`` per attempt)."""

    def __init__(self, plan: list[Exception | None], made: list[int] | None = None) -> None:
        self.plan, self.made, self.calls, self.progress = plan, made or [0] * len(plan), 0, 0

    async def __call__(self) -> int:
        step = self.plan[self.calls]
        self.progress += self.made[self.calls]
        self.calls += 1
        if step is not None:
            raise step
        return self.calls


def transient() -> RedisTransientError:
    return RedisTransientError("redis XADD: ConnectionError: reset", "XADD")


async def test_transient_errors_are_tried_again_with_growing_pauses() -> None:
    told: list[int] = []
    flaky = Flaky([transient(), transient(), transient(), None])
    result = await with_backoff(
        flaky,
        transient=lambda e: isinstance(e, RedisTransientError),
        on_failure=lambda _e, attempt, _d: told.append(attempt),
        backoff=Backoff(0.001, 0.004),
    )
    assert result == 4 and told == [1, 2, 3]


async def test_other_errors_are_raised_at_once() -> None:
    flaky = Flaky([RedisCommandError("redis XADD: WRONGTYPE", "XADD"), None])
    with pytest.raises(RedisCommandError):
        await with_backoff(
            flaky,
            transient=lambda e: isinstance(e, RedisTransientError),
            on_failure=lambda *_: None,
            backoff=Backoff(0.001, 0.004),
        )
    assert flaky.calls == 1


async def test_an_attempt_that_made_progress_starts_the_pauses_again() -> None:
    told: list[int] = []
    flaky = Flaky([transient(), transient(), transient(), transient(), None], made=[0, 0, 5, 0, 0])
    await with_backoff(
        flaky,
        transient=lambda e: isinstance(e, RedisTransientError),
        on_failure=lambda _e, attempt, _d: told.append(attempt),
        backoff=Backoff(0.001, 0.004),
        progress=lambda: flaky.progress,
    )
    assert told == [1, 2, 1, 2]  # the third attempt pushed 5 before it dropped


async def test_a_stop_ends_the_pause() -> None:
    stop = asyncio.Event()
    flaky = Flaky([transient(), None])
    result = await with_backoff(
        flaky, transient=lambda e: True, on_failure=lambda *_: stop.set(), backoff=Backoff(3600.0, 3600.0), stop=stop
    )
    assert result is STOPPED and flaky.calls == 1


async def test_a_redis_call_gives_up_once_its_budget_is_spent() -> None:
    flaky = Flaky([transient()] * 3)
    with pytest.raises(RedisUnavailableError, match="still failing after 0s"):
        await Retrying(base_s=0.001, cap_s=0.002).call("XADD", flaky, budget_s=0.0)
    assert flaky.calls == 1


class Attempts:
    """Fails with each of ``errors`` in turn, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_retried_until_it_works() -> None:
    fn = Attempts(RedisTransientError("reset"), RedisTransientError("LOADING"))
    answered: list[bool] = []
    retry = Retrying(base_s=0, on_failure=lambda *args: None, on_success=lambda: answered.append(True))
    assert await retry.call("read", fn) == "ok" and fn.calls == 3 and answered == [True]
    with pytest.raises(RedisCommandError):
        await retry.call("read", Attempts(RedisCommandError("NOPERM")))


async def test_a_stop_during_the_back_off_ends_the_attempts() -> None:
    stop = asyncio.Event()
    fn = Attempts(*[RedisTransientError("refused")] * 5)
    retry = Retrying(base_s=3600, cap_s=3600, on_failure=lambda *args: stop.set())
    assert await asyncio.wait_for(retry.call_until(stop, "read", fn), 5) is None
    assert fn.calls == 1
    assert await Retrying(base_s=0).call_until(asyncio.Event(), "read", Attempts()) == "ok"


async def test_a_budget_turns_into_unavailable() -> None:
    retry = Retrying(base_s=0, on_failure=lambda *args: None)
    with pytest.raises(RedisUnavailableError, match="still failing after 0s"):
        await retry.call("xadd", Attempts(*[RedisTransientError("refused")] * 1000), budget_s=0)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed"),
        AttributeError("'NoneType' object has no attribute 'writelines'"),
    ],
)
async def test_a_connection_closed_under_a_command_is_transient(error: Exception) -> None:
    """What redis-py's cluster client raises when a topology refresh (a failover) closes a connection in use."""

    async def call() -> None:
        raise error

    with pytest.raises(RedisTransientError, match="closed under it"):
        await guarded("XREADGROUP", call())


async def test_other_runtime_errors_are_not_redis_errors() -> None:
    async def call() -> None:
        raise AttributeError("'Item' object has no attribute 'labels'")

    with pytest.raises(AttributeError):
        await guarded("XREADGROUP", call())
