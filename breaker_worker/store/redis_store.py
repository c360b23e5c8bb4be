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
from ..core.window import Counts, counts_of_last_calls
from .base import OutcomeBatch, StateRecord, StoreUnavailableError

POOL_RESET_CHANNEL = "cb:pool-reset"  # {"alias", "generation"}: reconnect
STATE_CHANNEL = "cb:state"  # {"alias", "epoch"}: a breaker changed state, poll now
RECENT_KEY = "cb:recent"  # sorted set: alias -> last time it recorded anything
POLICY_VERSION_KEY = "cb:policy-version"  # bumped whenever an alias's policy changes
GUARD_KEY = "cb:guard"  # JSON: why failovers are held back (mass outage), while it lasts
TRIPPED_KEY = "cb:tripped"  # hash: alias -> "<epoch> <state>"; those not closed are evaluated without traffic

CLAIMS = ("failback-check", "failback", "failover-retry")  # purposes of RedisBreakerStore.claim
VIEW_CHUNK = 500  # aliases per view script call: a few milliseconds of Redis time each
STATE_FIELDS = ("state", "epoch", "since", "open_until", "reopens", "reason")

# The window hash holds one field per second and counter (c:, f:, s:<second>), running totals
# of the buckets still in the window (tc, tf, ts), the oldest second they include (lo), and
# the connect-failure streak (cf): subtract-on-evict, as core.window.TimeWindow, so reading a
# window costs O(1) instead of a scan of every bucket.
# KEYS: window, generation. ARGV: generation, ttl, connect-failure streak ("" to leave it,
# "=N" to set it after a success, "+N" to extend it), window seconds, then
# (second, calls, failures, slow)...
# Outcomes gathered under an older generation were measured against the previous server:
# they must not count against the new one.
RECORD_SCRIPT = """
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return 0 end
local lo = tonumber(redis.call('HGET', KEYS[1], 'lo'))
local newest = nil
for i = 5, #ARGV, 4 do
  local second = tonumber(ARGV[i])
  if lo == nil or second >= lo then  -- older buckets already left the window
    redis.call('HINCRBY', KEYS[1], 'c:' .. second, ARGV[i + 1])
    redis.call('HINCRBY', KEYS[1], 'tc', ARGV[i + 1])
    if ARGV[i + 2] ~= '0' then
      redis.call('HINCRBY', KEYS[1], 'f:' .. second, ARGV[i + 2])
      redis.call('HINCRBY', KEYS[1], 'tf', ARGV[i + 2])
    end
    if ARGV[i + 3] ~= '0' then
      redis.call('HINCRBY', KEYS[1], 's:' .. second, ARGV[i + 3])
      redis.call('HINCRBY', KEYS[1], 'ts', ARGV[i + 3])
    end
  end
  if newest == nil or second > newest then newest = second end
end
-- Evict what this batch's newest second pushed out of the window, so that the evaluator
-- usually only reads totals (the view script evicts for aliases that went quiet).
if lo ~= nil and newest ~= nil and newest - tonumber(ARGV[4]) + 1 > lo then
  local new_lo = newest - tonumber(ARGV[4]) + 1
  local evicted = {}
  local calls, failures, slow = 0, 0, 0
  for second = lo, math.min(new_lo - 1, lo + 3 * tonumber(ARGV[4]) + 120) do
    local names = {'c:' .. second, 'f:' .. second, 's:' .. second}
    local c, f, s = unpack(redis.call('HMGET', KEYS[1], unpack(names)))
    if c then
      calls, failures, slow = calls + c, failures + (tonumber(f) or 0), slow + (tonumber(s) or 0)
      for _, name in ipairs(names) do evicted[#evicted + 1] = name end
    end
  end
  if #evicted > 0 then
    redis.call('HDEL', KEYS[1], unpack(evicted))
    -- Only non-zero amounts: Lua writes -0 for a negated zero, which HINCRBY rejects.
    if calls ~= 0 then redis.call('HINCRBY', KEYS[1], 'tc', -calls) end
    if failures ~= 0 then redis.call('HINCRBY', KEYS[1], 'tf', -failures) end
    if slow ~= 0 then redis.call('HINCRBY', KEYS[1], 'ts', -slow) end
  end
  redis.call('HSET', KEYS[1], 'lo', new_lo)
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
# open_until, reopens ('' keeps the stored count), clear window (1/0), epoch floor.
# Returns {applied (1/0), current state, current epoch}.
# The floor is the highest epoch the control DB has seen for the alias: a Redis that lost its
# data restarts at epoch 0, and epoch 1 again would look like an incident already failed over.
TRANSITION_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if state ~= ARGV[1] or epoch ~= tonumber(ARGV[2]) then return {0, state, epoch} end
epoch = math.max(epoch, tonumber(ARGV[9])) + 1
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

# KEYS: state and window of each alias, in pairs. ARGV: now (whole seconds), window seconds,
# window calls. For each alias: its state fields, then calls, failures, slow of the window
# (seconds after now - window), the connect-failure streak, and, for a count-based window, the
# bucket fields inside it. Evicts the buckets that left the window from the totals (usually
# one a second); a window never read before, idle for long, or count-based is scanned whole.
# Many aliases per call: a tick over 10,000 aliases is 20 calls, not 10,000 (per-call costs in
# Redis and redis-py dominate). Their keys lie in different hash slots, so on Redis Cluster
# the caller would have to group aliases by slot; this store uses a standalone client.
VIEW_SCRIPT = """
local new_lo = tonumber(ARGV[1]) - tonumber(ARGV[2]) + 1
local keep_buckets = tonumber(ARGV[3]) > 0
local idle_limit = 2 * tonumber(ARGV[2]) + 120
local views = {}
for k = 1, #KEYS, 2 do
  local window = KEYS[k + 1]
  local state = redis.call('HMGET', KEYS[k], 'state', 'epoch', 'since', 'open_until', 'reopens', 'reason')
  local totals = redis.call('HMGET', window, 'tc', 'tf', 'ts', 'cf', 'lo')
  local calls, failures, slow = tonumber(totals[1]) or 0, tonumber(totals[2]) or 0, tonumber(totals[3]) or 0
  local lo = tonumber(totals[5])
  local inside = {}
  if lo ~= nil and not keep_buckets and new_lo - lo <= idle_limit then
    if new_lo > lo then
      local evicted = {}
      for second = lo, new_lo - 1 do
        local names = {'c:' .. second, 'f:' .. second, 's:' .. second}
        local c, f, s = unpack(redis.call('HMGET', window, unpack(names)))
        if c then
          calls, failures, slow = calls - c, failures - (tonumber(f) or 0), slow - (tonumber(s) or 0)
          for _, name in ipairs(names) do evicted[#evicted + 1] = name end
        end
      end
      if #evicted > 0 then redis.call('HDEL', window, unpack(evicted)) end
      redis.call('HSET', window, 'tc', calls, 'tf', failures, 'ts', slow, 'lo', new_lo)
    end
  else
    local fields = redis.call('HGETALL', window)
    calls, failures, slow = 0, 0, 0
    local stale = {}
    for i = 1, #fields, 2 do
      local name, value = fields[i], fields[i + 1]
      local second = tonumber(string.sub(name, 3))
      if string.sub(name, 2, 2) == ':' and second then
        if second < new_lo then
          stale[#stale + 1] = name
        else
          local kind = string.sub(name, 1, 1)
          if kind == 'c' then calls = calls + value elseif kind == 'f' then failures = failures + value
          else slow = slow + value end
          if keep_buckets then inside[#inside + 1] = name; inside[#inside + 1] = value end
        end
      end
    end
    for i = 1, #stale, 1000 do redis.call('HDEL', window, unpack(stale, i, math.min(i + 999, #stale))) end
    if #fields > 0 then
      redis.call('HSET', window, 'tc', calls, 'tf', failures, 'ts', slow, 'lo', new_lo)
    end
  end
  views[#views + 1] = {state, calls, failures, slow, tonumber(totals[4]) or 0, inside}
end
return views
"""

# KEYS: state. ARGV: epoch, reason. Rewrites the reason of the breaker's current state only.
ANNOTATE_SCRIPT = """
if tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'reason', ARGV[2])
return 1
"""

RELEASE_LEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def key(alias: str, name: str) -> str:
    return f"cb:{{{alias}}}:{name}"


class Hints:
    """A subscription to the pool-reset and state-change channels (one per sync thread)."""

    def __init__(self, client: redis.Redis) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(POOL_RESET_CHANNEL, STATE_CHANNEL)
        except redis.RedisError as exc:
            self.close()
            raise StoreUnavailableError(f"Redis subscribe failed: {exc}") from exc

    def next(self, timeout: float) -> tuple[str, str] | None:
        """The next (channel, data) within ``timeout`` seconds, or None."""
        try:
            message = self._pubsub.get_message(timeout=timeout)
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"Redis subscription failed: {exc}") from exc
        return None if message is None else (message["channel"], message["data"])

    def close(self) -> None:
        try:
            self._pubsub.close()
        except redis.RedisError:
            pass  # the connection is gone already


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


STATES = {state.value: state for state in State}
NEVER_MOVED = StateRecord()


def parse_state(values: list[Any], generation: Any = None) -> StateRecord:
    state, epoch, since, open_until, reopens, reason = values
    if state is None and generation is None:
        return NEVER_MOVED  # most aliases, most of the time: no state hash yet
    return StateRecord(
        state=STATES[state] if state else State.CLOSED,
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
        self._annotate = client.register_script(ANNOTATE_SCRIPT)
        self._view = client.register_script(VIEW_SCRIPT)

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
                args: list[Any] = [batch.generation, ttl, batch.streak_argument(), batch.window_seconds]
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
            chunks = [aliases[i : i + VIEW_CHUNK] for i in range(0, len(aliases), VIEW_CHUNK)]
            for chunk in chunks:
                keys = [k for alias in chunk for k in (key(alias, "state"), key(alias, "window"))]
                self._view(keys=keys, args=[int(now), window_seconds, window_calls], client=pipe)
            replies = [view for chunk_views in pipe.execute() for view in chunk_views]
            views: dict[str, BreakerView] = {}
            for alias, (state, calls, failures, slow, streak, inside) in zip(aliases, replies, strict=True):
                record = parse_state(state)
                counts = Counts(calls, failures, slow)
                if window_calls:
                    buckets = parse_window(dict(zip(inside[::2], inside[1::2], strict=True)))
                    counts = counts_of_last_calls(buckets, now, window_seconds, window_calls)
                views[alias] = BreakerView(
                    alias=alias,
                    state=record.state,
                    epoch=record.epoch,
                    open_until=record.open_until,
                    reopens=record.reopens,
                    since=record.since,
                    connect_failures=streak,
                    counts=counts,
                )
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
        epoch_floor: int = 0,
    ) -> int | None:
        """Compare-and-set: apply only if the breaker is still in ``expected`` at ``expected_epoch``.
        The new epoch is above ``epoch_floor``. Returns it, or None when another evaluator or task
        got there first."""
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
                    epoch_floor,
                ],
            )
            # Also on a refused transition: repairs the index if an earlier write of it failed.
            if int(epoch) > 0:
                self._mark_tripped(keys=[TRIPPED_KEY], args=[alias, epoch, state])
            return int(epoch) if applied else None

        return self._run("transition", run)

    def annotate(self, alias: str, epoch: int, reason: str) -> bool:
        """Replace the reason of the breaker's state if it is still at ``epoch``."""
        return bool(self._run("annotate", lambda: self._annotate(keys=[key(alias, "state")], args=[epoch, reason])))

    def advance_generation(self, alias: str, generation: int) -> bool:
        return bool(
            self._run(
                "generation update",
                lambda: self._advance_generation(
                    keys=[key(alias, "generation"), key(alias, "window")], args=[generation]
                ),
            )
        )

    def hints(self) -> Hints:
        return Hints(self.client)

    def publish_pool_reset(self, alias: str, generation: int) -> None:
        message = json.dumps({"alias": alias, "generation": generation})
        self._run("publish", lambda: self.client.publish(POOL_RESET_CHANNEL, message))

    def publish_state_change(self, alias: str, epoch: int) -> None:
        message = json.dumps({"alias": alias, "epoch": epoch})
        self._run("publish", lambda: self.client.publish(STATE_CHANNEL, message))

    def acquire_lease(self, alias: str, owner: str, seconds: float) -> bool:
        return bool(
            self._run(
                "lease", lambda: self.client.set(key(alias, "lease"), owner, nx=True, px=max(1, int(seconds * 1000)))
            )
        )

    def release_lease(self, alias: str, owner: str) -> None:
        self._run("lease release", lambda: self._release_lease(keys=[key(alias, "lease")], args=[owner]))

    def note_preferred_health(self, alias: str, healthy: bool, now: float) -> float:
        """Since when the alias's preferred server has answered every check (now if it just
        failed: the streak restarts)."""

        def run() -> float:
            name = key(alias, "preferred-healthy-since")
            if not healthy:
                self.client.delete(name)
                return now
            self.client.set(name, now, nx=True, ex=86400)
            return float(self.client.get(name) or now)

        return self._run("failback", run)

    def claim(self, alias: str, purpose: str, seconds: float) -> bool:
        """True at most once per ``seconds`` for an alias and purpose, across every process."""
        name = key(alias, f"claim:{purpose}")
        return bool(self._run("claim", lambda: self.client.set(name, 1, nx=True, px=max(1, int(seconds * 1000)))))

    def policy_version(self) -> int:
        return int(self._run("policy version", lambda: self.client.get(POLICY_VERSION_KEY)) or 0)

    def bump_policy_version(self) -> None:
        self._run("policy version", lambda: self.client.incr(POLICY_VERSION_KEY))

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
        names = ("state", "window", "generation", "lease", "preferred-healthy-since", *(f"claim:{p}" for p in CLAIMS))
        self._run("delete", lambda: self.client.delete(*(key(alias, n) for n in names)))
        self._run("delete", lambda: self.client.hdel(TRIPPED_KEY, alias))
        self._run("delete", lambda: self.client.zrem(RECENT_KEY, alias))
