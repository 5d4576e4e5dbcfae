"""The transient-error policy: retried until it works, a stop asked for during a back-off ends the attempts
(None, no exception), a budget turns into RedisUnavailableError, other errors go through at once."""

from __future__ import annotations

import asyncio

import pytest

from worker.errors import RedisCommandError, RedisTransientError, RedisUnavailableError
from worker.streams.retry import Retrying


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_retried_until_it_works() -> None:
    fn = Flaky(RedisTransientError("reset"), RedisTransientError("LOADING"))
    answered: list[bool] = []
    retry = Retrying(base_s=0, on_failure=lambda *args: None, on_success=lambda: answered.append(True))
    assert await retry.call("read", fn) == "ok" and fn.calls == 3 and answered == [True]
    with pytest.raises(RedisCommandError):
        await retry.call("read", Flaky(RedisCommandError("NOPERM")))


async def test_a_stop_during_the_back_off_ends_the_attempts() -> None:
    stop = asyncio.Event()
    fn = Flaky(*[RedisTransientError("refused")] * 5)
    retry = Retrying(base_s=3600, cap_s=3600, on_failure=lambda *args: stop.set())
    assert await asyncio.wait_for(retry.call_until(stop, "read", fn), 5) is None
    assert fn.calls == 1
    assert await Retrying(base_s=0).call_until(asyncio.Event(), "read", Flaky()) == "ok"


async def test_a_budget_turns_into_unavailable() -> None:
    retry = Retrying(base_s=0, on_failure=lambda *args: None)
    with pytest.raises(RedisUnavailableError, match="still failing after 0s"):
        await retry.call("xadd", Flaky(*[RedisTransientError("refused")] * 1000), budget_s=0)
