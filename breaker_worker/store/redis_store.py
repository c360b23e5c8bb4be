"""The Redis breaker store: windows, state and epoch, generation, probe lease, pool-reset hints.

Every key of one alias shares the hash tag ``{alias}`` so that each Lua script touches one
hash slot and the store runs on Redis Cluster. Transitions are compare-and-set on the epoch in
one script: two evaluators, two beats or a retried task can never apply the same change twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..core.machine import BreakerView, State
from ..core.window import Counts, counts_from_buckets, counts_of_last_calls
from .base import OutcomeBatch, StateRecord, StoreUnavailableError

POOL_RESET_CHANNEL = "cb:pool-reset"
RECENT_KEY = "cb:recent"  # sorted set: alias -> last time it recorded anything
GUARD_KEY = "cb:guard"  # JSON: why failovers are held back (mass outage), while it lasts
TRIPPED_KEY = "cb:tripped"  # hash: alias -> "<epoch> <state>"; those not closed are evaluated without traffic

STATE_FIELDS = ("state", "epoch", "since", "open_until", "reopens", "reason")

# KEYS: window, generation. ARGV: generation, ttl, connect-failure streak ("" to leave it,
# "=N" to set it after a success, "+N" to extend it), then (second, calls, failures, slow)...
# Outcomes gathered under an older generation were measured against the previous server:
# they must not count against the new one.
RECORD_SCRIPT = """
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 4 do
  local second = ARGV[i]
  redis.call('HINCRBY', KEYS[1], 'c:' .. second, ARGV[i + 1])
  if ARGV[i + 2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'f:' .. second, ARGV[i + 2]) end
  if ARGV[i + 3] ~= '0' then redis.call('HINCRBY', KEYS[1], 's:' .. second, ARGV[i + 3]) end
end
local streak = ARGV[3]
if string.sub(streak, 1, 1) == '=' then
  redis.call('HSET', KEYS[1], 'cf', string.sub(streak, 2))
elseif string.sub(streak, 1, 1) == '+' then
  redis.call('HINCRBY', KEYS[1], 'cf', string.sub(streak, 2))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: state, window. ARGV: expected state, expected epoch, to state, now, reason,
# open_until, reopens ('' keeps the stored count), clear window (1/0).
# Returns {applied (1/0), current state, current epoch}.
TRANSITION_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if state ~= ARGV[1] or epoch ~= tonumber(ARGV[2]) then return {0, state, epoch} end
epoch = epoch + 1
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'epoch', epoch, 'since', ARGV[4],
           'reason', ARGV[5], 'open_until', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'reopens', ARGV[7]) end
if ARGV[8] == '1' then redis.call('DEL', KEYS[2]) end
return {1, ARGV[3], epoch}
"""

# KEYS: the tripped hash. ARGV: alias, epoch, state. The tripped index lives outside the
# alias's hash slot, so it is written after the transition; the epoch guard makes a late
# write from an older transition a no-op instead of undoing a newer one.
MARK_TRIPPED_SCRIPT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(string.match(current, '^%d+')) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1
"""

# KEYS: generation, window. ARGV: generation. Only ever moves forward, so a retried
# failover cannot bump twice; the old generation's window goes with it.
ADVANCE_GENERATION_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= current then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""

RELEASE_LEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def key(alias: str, name: str) -> str:
    return f"cb:{{{alias}}}:{name}"


def make_client(url: str, timeout: float = 1.0, retries: int = 0) -> redis.Redis:
    """A client with deliberate timeouts and retries: redis-py's defaults can stall a caller
    for many seconds while Redis is down."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries),
        health_check_interval=30,
        decode_responses=True,
    )


def parse_state(values: list[Any], generation: Any = None) -> StateRecord:
    state, epoch, since, open_until, reopens, reason = values
    return StateRecord(
        state=State(state) if state else State.CLOSED,
        epoch=int(epoch or 0),
        since=float(since or 0),
        open_until=float(open_until or 0),
        reopens=int(reopens or 0),
        reason=reason or "",
        generation=int(generation or 0),
    )


def parse_window(fields: dict[str, str]) -> list[tuple[int, Counts]]:
    per_second: dict[int, list[int]] = {}
    for name, value in fields.items():
        kind, _, second = name.partition(":")
        if not second:
            continue  # "cf", the connect-failure streak
        slot = per_second.setdefault(int(second), [0, 0, 0])
        slot["cfs".index(kind)] += int(value)
    return [(second, Counts(*values)) for second, values in per_second.items()]


class RedisBreakerStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._record = client.register_script(RECORD_SCRIPT)
        self._transition = client.register_script(TRANSITION_SCRIPT)
        self._advance_generation = client.register_script(ADVANCE_GENERATION_SCRIPT)
        self._mark_tripped = client.register_script(MARK_TRIPPED_SCRIPT)
        self._release_lease = client.register_script(RELEASE_LEASE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, timeout: float = 1.0, retries: int = 0) -> RedisBreakerStore:
        return cls(make_client(url, timeout, retries))

    def _run(self, action: str, call: Any) -> Any:
        try:
            return call()
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"Redis {action} failed: {exc}") from exc

    def record(self, batches: Iterable[OutcomeBatch], now: float, ttl: int = 3600) -> None:
        def run() -> None:
            pipe = self.client.pipeline(transaction=False)
            aliases: dict[str, float] = {}
            for batch in batches:
                args: list[Any] = [batch.generation, ttl, batch.streak_argument()]
                for second, counts in batch.buckets.items():
                    args += [second, counts.calls, counts.failures, counts.slow]
                self._record(keys=[key(batch.alias, "window"), key(batch.alias, "generation")], args=args, client=pipe)
                aliases[batch.alias] = now
            if aliases:
                pipe.zadd(RECENT_KEY, aliases)
                pipe.execute()

        self._run("record", run)

    def recent_aliases(self, since: float) -> list[str]:
        def run() -> list[str]:
            pipe = self.client.pipeline(transaction=False)
            pipe.zremrangebyscore(RECENT_KEY, "-inf", f"({since}")
            pipe.zrange(RECENT_KEY, 0, -1)
            pipe.hgetall(TRIPPED_KEY)
            _, recent, marks = pipe.execute()
            tripped = {alias for alias, mark in marks.items() if not mark.endswith(" " + State.CLOSED.value)}
            return sorted(set(recent) | tripped)

        return self._run("read of recent aliases", run)

    def views(
        self, aliases: Iterable[str], now: float, window_seconds: int, window_calls: int = 0
    ) -> dict[str, BreakerView]:
        """States and window counts; ``window_calls`` > 0 counts only the last that many calls.
        Prunes window buckets older than ``window_seconds``."""
        aliases = list(aliases)

        def run() -> dict[str, BreakerView]:
            pipe = self.client.pipeline(transaction=False)
            for alias in aliases:
                pipe.hmget(key(alias, "state"), STATE_FIELDS)
                pipe.hgetall(key(alias, "window"))
            replies = pipe.execute()
            views: dict[str, BreakerView] = {}
            prune = self.client.pipeline(transaction=False)
            oldest = int(now) - window_seconds
            for index, alias in enumerate(aliases):
                record = parse_state(replies[2 * index])
                fields = replies[2 * index + 1]
                views[alias] = BreakerView(
                    alias=alias,
                    state=record.state,
                    epoch=record.epoch,
                    open_until=record.open_until,
                    reopens=record.reopens,
                    since=record.since,
                    connect_failures=int(fields.get("cf", 0)),
                    counts=(
                        counts_of_last_calls(parse_window(fields), now, window_seconds, window_calls)
                        if window_calls
                        else counts_from_buckets(parse_window(fields), now, window_seconds)
                    ),
                )
                stale = [n for n in fields if n.partition(":")[2] and int(n.partition(":")[2]) <= oldest]
                if stale:
                    prune.hdel(key(alias, "window"), *stale)
            if len(prune):
                prune.execute()
            return views

        return self._run("read of breaker views", run)

    def states(self, aliases: Iterable[str]) -> dict[str, StateRecord]:
        aliases = list(aliases)

        def run() -> dict[str, StateRecord]:
            pipe = self.client.pipeline(transaction=False)
            for alias in aliases:
                pipe.hmget(key(alias, "state"), STATE_FIELDS)
                pipe.get(key(alias, "generation"))
            replies = pipe.execute()
            return {alias: parse_state(replies[2 * i], replies[2 * i + 1]) for i, alias in enumerate(aliases)}

        return self._run("read of breaker states", run)

    def transition(
        self,
        alias: str,
        expected: State,
        expected_epoch: int,
        to_state: State,
        now: float,
        reason: str,
        open_until: float = 0.0,
        reopens: int | None = None,
    ) -> int | None:
        """Compare-and-set: apply only if the breaker is still in ``expected`` at ``expected_epoch``.
        Returns the new epoch, or None when another evaluator or task got there first."""
        # A breaker leaving open starts a fresh window: its old failures are already judged.
        clear_window = 1 if to_state in (State.HALF_OPEN, State.CLOSED) else 0

        def run() -> int | None:
            applied, state, epoch = self._transition(
                keys=[key(alias, "state"), key(alias, "window")],
                args=[
                    expected.value,
                    expected_epoch,
                    to_state.value,
                    now,
                    reason,
                    open_until,
                    "" if reopens is None else reopens,
                    clear_window,
                ],
            )
            # Also on a refused transition: repairs the index if an earlier write of it failed.
            if int(epoch) > 0:
                self._mark_tripped(keys=[TRIPPED_KEY], args=[alias, epoch, state])
            return int(epoch) if applied else None

        return self._run("transition", run)

    def advance_generation(self, alias: str, generation: int) -> bool:
        return bool(
            self._run(
                "generation update",
                lambda: self._advance_generation(
                    keys=[key(alias, "generation"), key(alias, "window")], args=[generation]
                ),
            )
        )

    def publish_pool_reset(self, alias: str, generation: int) -> None:
        message = json.dumps({"alias": alias, "generation": generation})
        self._run("publish", lambda: self.client.publish(POOL_RESET_CHANNEL, message))

    def acquire_lease(self, alias: str, owner: str, seconds: float) -> bool:
        return bool(
            self._run(
                "lease", lambda: self.client.set(key(alias, "lease"), owner, nx=True, px=max(1, int(seconds * 1000)))
            )
        )

    def release_lease(self, alias: str, owner: str) -> None:
        self._run("lease release", lambda: self._release_lease(keys=[key(alias, "lease")], args=[owner]))

    def set_guard(self, reason: str, ttl: float) -> None:
        """Hold failovers back for ``ttl`` seconds unless renewed (the evaluator renews it)."""
        self._run("guard", lambda: self.client.set(GUARD_KEY, reason, px=max(1, int(ttl * 1000))))

    def clear_guard(self) -> None:
        self._run("guard", lambda: self.client.delete(GUARD_KEY))

    def guard(self) -> str | None:
        """Why failovers are held back now, or None."""
        return self._run("guard", lambda: self.client.get(GUARD_KEY))

    def forget(self, alias: str) -> None:
        """Remove every key of one alias (tests and alias removal)."""
        names = ("state", "window", "generation", "lease")
        self._run("delete", lambda: self.client.delete(*(key(alias, n) for n in names)))
        self._run("delete", lambda: self.client.hdel(TRIPPED_KEY, alias))
        self._run("delete", lambda: self.client.zrem(RECENT_KEY, alias))
