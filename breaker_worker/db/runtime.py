"""The breaker of one process: records outcomes, knows targets and states, syncs with Redis.

The query path only touches memory. A quick success (the common call) adds one to its
connection's SuccessCounter, which only that connection's thread writes and the sync thread
reads as a difference, so counting needs neither a lock nor an allocation. Any other outcome
(a failure, a slow call, a failed connect) appends one tuple to a deque. Each alias's
AliasGate tells the query path, in two attributes, whether its calls must be checked for
rejection and below what duration a success is only counted. In sequential mode the runtime
also drives a SequentialBreaker per alias (under its lock, for every outcome but a quick
success on a closed breaker), so this process opens (and rejects) inline
without waiting for the evaluator; the sync thread then publishes that transition through
the same service as the evaluator (history row, failover task) and adopts whatever the
shared state has moved on to since. A background thread
(one per process, restarted in forked children) flushes the gathered outcomes to Redis in one
pipeline every BREAKER_SYNC_SECONDS, reads back the states and generations of the aliases this
process uses, and reloads the active candidate of an alias whose generation moved on. A
pool-reset message on Redis pub/sub only wakes that thread early: a process that misses it
still catches up on its next poll. When Redis cannot be reached, shared states are forgotten
(a stale "open" must not reject forever) and each process judges its own queries with the
sequential driver; outcomes of the last window are kept for later; one log line says so, and
another when Redis answers again and the shared evaluation takes over.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import threading
import time
import weakref

from django.conf import settings
from django.db import DatabaseError, connections

from .. import metrics
from ..core.classify import classify
from ..core.machine import REJECTING_STATES, State
from ..core.policy import Policy
from ..core.sequential import LocalTransition, SequentialBreaker
from ..core.window import Counts, Outcome
from ..policies import RELOAD_SECONDS
from ..store import RedisBreakerStore, StateRecord, StoreUnavailableError
from ..store.base import OutcomeBatch
from ..store.redis_store import NEVER_MOVED, POOL_RESET_CHANNEL
from .errors import BreakerOpenError
from .target import Target, load_target

logger = logging.getLogger(__name__)

# Enum members looked up once: on Python 3.11 each State.X / Outcome.X costs ~90 ns, and the
# query path would pay it several times per call.
FAILURE, SLOW, IGNORED = Outcome.FAILURE, Outcome.SLOW, Outcome.IGNORED
CLOSED = State.CLOSED

# Shared half-open admits only the prober's probe queries (one prober per alias, by lease), so
# trial calls are bounded across all processes; application queries wait for the probes to
# close the breaker. A process's own half-open (sequential mode, or Redis away) admits a few.
SHARED_REJECTING = REJECTING_STATES | {State.HALF_OPEN}
OPERATOR_STATES = frozenset({State.FORCED_OPEN, State.DISABLED})

# The counts of one call, by [failed][slow]: made once, not per call.
ONE_CALL = ((Counts(1, 0, 0), Counts(1, 0, 1)), (Counts(1, 1, 0), Counts(1, 1, 1)))

UNKNOWN_ALIAS_RECHECK = 5.0  # seconds before asking the control DB again about an unknown alias


class AliasGate:
    """One alias in this process: the two things its query path reads, kept current by the
    runtime under its lock, and the success counters of its connections."""

    __slots__ = ("check", "quick_below", "counters")

    def __init__(self) -> None:
        self.check = False  # its calls may be rejected: ask reject_if_open
        # A success faster than this is only counted. 0 while this process judges the alias
        # call by call (its own breaker is not closed): every outcome goes through record().
        self.quick_below = 0.0
        self.counters: list[SuccessCounter] = []  # changed under the runtime lock


class SuccessCounter:
    """The quick successes of one connection on one generation. Only the connection's thread
    adds to ``successes``; the runtime reads it as the difference from what it read last (one
    mark per reader), so nothing is lost and nobody waits for a lock. Django gives each thread
    its own connection; a connection shared between threads by hand (``inc_thread_sharing``)
    could lose a count when two of them finish a query at the same instant."""

    __slots__ = ("alias", "generation", "gate", "successes", "flushed", "judged", "retired", "_owner")

    def __init__(self, alias: str, generation: int, gate: AliasGate, owner: object) -> None:
        self.alias = alias
        self.generation = generation
        self.gate = gate
        self.successes = 0
        self.flushed = 0  # read by flush (under the flush lock) into the tallies for Redis
        self.judged = 0  # read by this process's own breakers (under the runtime lock)
        self.retired = False  # its connection moved on to a new counter
        self._owner = weakref.ref(owner)

    @property
    def finished(self) -> bool:
        """No more successes will come: the connection moved on or is gone."""
        return self.retired or self._owner() is None


class Tally:
    """The outcomes of one alias and generation gathered since the last flush."""

    __slots__ = ("buckets", "succeeded", "connect_failures")

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = {}  # second -> [calls, failures, slow]
        self.succeeded = False  # a call succeeded: the shared streak restarts from connect_failures
        self.connect_failures = 0  # failed connects since the last success

    def add(self, second: int, failed: bool, slow: bool, connecting: bool) -> None:
        counts = self.buckets.get(second)
        if counts is None:
            counts = self.buckets[second] = [0, 0, 0]
        counts[0] += 1
        if failed:
            counts[1] += 1
            if connecting:
                self.connect_failures += 1
        else:
            self.succeeded = True
            self.connect_failures = 0
        if slow:
            counts[2] += 1

    def add_successes(self, second: int, successes: int) -> None:
        """Quick successes, read from the counters after the deque's outcomes and taken as newer
        than them: they end the streak of failed connects. (A failed connect first has the
        successes before it tallied: see BreakerRuntime.record.)"""
        counts = self.buckets.get(second)
        if counts is None:
            counts = self.buckets[second] = [0, 0, 0]
        counts[0] += successes
        self.succeeded = True
        self.connect_failures = 0

    def merge_older(self, older: Tally, oldest_second: int) -> None:
        """Fold in a tally gathered before this one (a flush that failed)."""
        for second, counts in older.buckets.items():
            if second > oldest_second:
                merged = self.buckets.setdefault(second, [0, 0, 0])
                for index, value in enumerate(counts):
                    merged[index] += value
        if not self.succeeded:  # this newer tally's streak, if it has one, supersedes
            self.succeeded = older.succeeded
            self.connect_failures += older.connect_failures

    def batch(self, alias: str, generation: int, window_seconds: int) -> OutcomeBatch:
        buckets = {second: Counts(*counts) for second, counts in self.buckets.items()}
        return OutcomeBatch(alias, generation, buckets, self.succeeded, self.connect_failures, window_seconds)


class BreakerRuntime:
    def __init__(
        self, redis_url: str, policy: Policy, sync_seconds: float, enabled: bool = True, sequential: bool = False
    ) -> None:
        self.enabled = enabled  # False: follow targets only; no recording, no rejecting, no Redis
        self.sequential = sequential
        self.redis_url = redis_url
        self.policy = policy
        self.sync_seconds = sync_seconds
        self.targets: dict[str, Target] = {}
        self.states: dict[str, StateRecord] = {}
        self._rejected: dict[str, StateRecord] = {}  # aliases whose shared state rejects queries
        self._disabled: set[str] = set()
        self._unregistered: dict[str, float] = {}  # alias -> when the control DB said "unknown"
        self.local: dict[str, SequentialBreaker] = {}  # sequential mode, or while Redis is away
        # Every alias this process has a protected connection for, and its gate.
        self.gates: dict[str, AliasGate] = {}
        self._after_fork()

    def _after_fork(self) -> None:
        """Fresh per-process parts: threads and sockets do not survive fork."""
        self._lock = threading.Lock()
        self._outcomes: collections.deque = collections.deque()  # recorded, not yet counted
        for counter in self._all_counters():  # the parent counted these: only what comes now is ours
            counter.flushed = counter.judged = counter.successes
        self._flush_lock = threading.Lock()  # flushes come from the sync thread, tests, exit
        self._pending: dict[tuple[str, int], Tally] = {}  # (alias, generation) -> counted outcomes
        self._local_transitions: list[LocalTransition] = []
        self._adopted_epochs: dict[str, int] = {}
        self._policy_version: int | None = None
        self._policies_loaded = time.monotonic()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._store_down = False
        self._sync_failing = False
        self.store = RedisBreakerStore.from_url(self.redis_url, timeout=1.0, retries=0)
        if not self.sequential:
            self.local.clear()  # a parent's verdicts while its Redis was away
        self._refresh_gates(list(self.gates))  # no other thread exists yet

    # --- query path: memory only -------------------------------------------------------

    def target(self, alias: str) -> Target | None:
        """The alias's target of the latest generation this process knows; loaded on first use."""
        target = self.targets.get(alias)
        if (
            target is None
            and time.monotonic() - self._unregistered.get(alias, -UNKNOWN_ALIAS_RECHECK) >= UNKNOWN_ALIAS_RECHECK
        ):
            target = load_target(alias)
            if target is None:
                self._unregistered[alias] = time.monotonic()
            else:
                target = self.targets.setdefault(alias, target)
                with self._lock:
                    self._refresh_gates([alias])  # its own policy's slow-call duration
        if self._thread is None and self.enabled:
            self._ensure_sync_thread()
        return target

    def watch(self, alias: str) -> AliasGate:
        """Follow this alias's shared state: this process has a protected connection for it (a
        tenant alias, or an alias of the project's own settings with this ENGINE)."""
        gate = self.gates.get(alias)
        if gate is None:
            with self._lock:  # filled in before anyone else can see it
                gate = self.gates.get(alias)
                if gate is None:
                    gate = AliasGate()
                    self._refresh_gate(alias, gate)
                    self.gates[alias] = gate
        return gate

    def counter(self, alias: str, generation: int, owner: object) -> SuccessCounter:
        """A new success counter for a connection (``owner``) that now reaches ``generation``."""
        gate = self.watch(alias)
        counter = SuccessCounter(alias, generation, gate, owner)
        # ``enabled`` is fixed when the process starts (the benchmark only switches it off for
        # a while); a disabled runtime never flushes: nothing would read or forget the counter.
        if self.enabled:
            with self._lock:
                gate.counters.append(counter)
        return counter

    def _all_counters(self) -> list[SuccessCounter]:
        return [counter for gate in list(self.gates.values()) for counter in gate.counters]

    def policy_of(self, alias: str) -> Policy:
        """The alias's own policy once its target is loaded, else the default."""
        target = self.targets.get(alias)
        return target.policy if target is not None else self.policy

    def reject_if_open(self, alias: str, trial: bool = True) -> None:
        """Raise BreakerOpenError if the alias's breaker rejects calls now. In sequential mode
        a call admitted in half-open counts as a trial when ``trial`` (a query, not a connect)."""
        record = self._rejected.get(alias)
        if record is not None:
            retry_after = max(0.0, record.open_until - time.time()) if record.open_until else None
            raise BreakerOpenError(alias, retry_after, record.reason)
        if (self.sequential or self._store_down) and alias not in self._disabled:
            local = self.local.get(alias)
            if local is None or local.state is CLOSED:
                return  # the common case, without the lock: a closed breaker admits every call
            with self._lock:
                retry_after = local.retry_after(time.time(), trial)
            if retry_after is not None:
                raise BreakerOpenError(alias, retry_after, "opened in this process")

    def record(self, alias: str, generation: int, outcome: Outcome, duration: float, connecting: bool = False) -> None:
        """An outcome that is not a quick success (those go to a SuccessCounter)."""
        if outcome is IGNORED:
            return
        now = time.time()
        if connecting:
            # The successes counted before a failed connect are tallied before it, or their
            # flush would take them as newer and end the streak of failed connects with them.
            with self._flush_lock:
                self._count_outcomes()
                self._count_successes(int(now))
        # One append to a deque (thread-safe, no lock): the sync thread does the counting.
        self._outcomes.append((alias, generation, now, outcome, duration, connecting))
        if self.sequential or self._store_down:
            slow = outcome is SLOW or duration >= self.policy_of(alias).slow_call_seconds
            with self._lock:
                self._judge_successes(now, [alias])  # the quick ones first: they came before this call
                self._drive_local(alias, generation, ONE_CALL[outcome is FAILURE][slow], now, connecting)
        if self._thread is None:
            self._ensure_sync_thread()

    def record_error(
        self, alias: str, generation: int, exc: BaseException, duration: float, connecting: bool = False
    ) -> None:
        self.record(alias, generation, classify(exc), duration, connecting)

    def _judge_successes(self, now: float, aliases: list[str] | None = None) -> None:
        """Under the lock: feed this process's closed breakers (of ``aliases``, default all) the
        quick successes counted since the last time, as one batch per connection. A breaker
        that is not closed takes each call's outcome through record(); a success counted while
        it tripped is dropped."""
        for alias in self.gates if aliases is None else aliases:
            gate = self.gates.get(alias)
            for counter in gate.counters if gate is not None else ():
                fresh = counter.successes - counter.judged
                if fresh:
                    counter.judged += fresh
                    local = self.local.get(alias)
                    if local is None or local.state is CLOSED:
                        self._drive_local(alias, counter.generation, Counts(fresh, 0, 0), now, False)

    def _drive_local(self, alias: str, generation: int, counts: Counts, now: float, connecting: bool) -> None:
        """Sequential mode, or while Redis is away; under the lock: per-call evaluation of this
        process's breaker."""
        if not (self.sequential or self._store_down):
            return  # Redis came back after the caller looked: the evaluator judges this call
        target = self.targets.get(alias)
        if target is not None and generation != target.generation:
            return  # measured against the previous server
        if alias in self._disabled:
            return  # an operator disabled this breaker: record, never trip
        local = self.local.get(alias)
        if local is None:
            local = self.local[alias] = SequentialBreaker(alias, self.policy_of(alias))
        transition = local.on_result(counts, now, connecting)
        if transition is not None:
            self._refresh_gates([alias])
            logger.warning(
                "breaker %s: %s -> %s in process %s (%s)",
                alias,
                transition.from_state.value,
                transition.to_state.value,
                os.getpid(),
                transition.reason,
            )
            if self.sequential:  # while Redis is away, the evaluator judges the kept outcomes later
                self._local_transitions.append(transition)

    # --- background sync ---------------------------------------------------------------

    def _ensure_sync_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="breaker-sync", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        hints = None
        while not self._stop.is_set():
            try:
                if hints is None:
                    hints = self.store.hints()
                message = hints.next(timeout=self.sync_seconds)
                if message is not None and message[0] == POOL_RESET_CHANNEL:
                    self._on_pool_reset_hint(message[1])
                # Any message (a state change too) ends the wait early: sync now.
                self.sync()
                self._sync_failing = False
            except StoreUnavailableError as exc:  # the one place that decides to swallow store trouble
                if hints is not None:
                    hints.close()
                    hints = None
                self._fail_open(exc)
                self._stop.wait(self.sync_seconds)
            except Exception:
                # Not Redis (the control DB, the broker, a bug): the shared states this process
                # knows are still true, so it keeps them; it says so once, and tries again.
                if not self._sync_failing:
                    self._sync_failing = True
                    logger.exception("breaker sync failed; this process retries every %ss", self.sync_seconds)
                self._stop.wait(self.sync_seconds)
            finally:
                # This thread's control-DB connection must not outlive its use.
                connections.close_all()

    def _on_pool_reset_hint(self, data: object) -> None:
        try:
            message = json.loads(data)  # type: ignore[arg-type]
            alias, generation = message["alias"], int(message["generation"])
        except (TypeError, ValueError, KeyError) as exc:
            logger.warning("ignored a malformed pool-reset message: %s", exc)
            return
        if alias in self.targets:
            logger.info("pool-reset hint for %s (generation %s)", alias, generation)
        else:
            logger.debug("ignored a pool-reset hint for %s: this process has no connection for it", alias)

    def sync(self) -> None:
        """Flush gathered outcomes, publish local transitions, then refresh states and targets.
        Raises StoreUnavailableError."""
        if self.sequential or self._store_down:
            with self._lock:
                self._judge_successes(time.time())
        self.flush()
        aliases = list(self.gates.keys() | self.targets.keys())
        records = self.store.states(aliases) if aliases else {}
        self._set_states(records)
        self._publish_local_transitions()  # after reading states: it compares-and-sets on them
        version = self.store.policy_version()
        if version != self._policy_version or time.monotonic() - self._policies_loaded > RELOAD_SECONDS:
            self._reload_policies(list(self.targets))
            self._policy_version, self._policies_loaded = version, time.monotonic()
        for alias, record in records.items():
            target = self.targets.get(alias)
            if target is not None and record.generation > target.generation:
                self._reload_target(alias, target)
            if self.sequential:
                self._adopt_shared(alias, record)
        if self._store_down:
            self._resume_shared_protection()

    def _resume_shared_protection(self) -> None:
        """Redis is back and the shared states are known again: the evaluator judges the
        outcomes kept meanwhile; local verdicts go (sequential mode keeps its own breakers)."""
        with self._lock:
            if not self.sequential:
                self.local.clear()
            self._store_down = False
            self._refresh_gates(list(self.gates))
        logger.warning("breaker store %s is reachable again: protection resumed", self._safe_url())

    def _publish_local_transitions(self) -> None:
        """Apply this process's own transitions to the shared state, as the evaluator would."""
        with self._lock:
            transitions, self._local_transitions = self._local_transitions, []
        if not transitions:
            return
        from ..services import transition as apply_transition  # services sit above this layer

        for index, local in enumerate(transitions):
            shared = self.states.get(local.alias, NEVER_MOVED)
            if shared.state is not local.from_state:
                continue  # the shared breaker already moved on; the next poll adopts it
            try:
                epoch = apply_transition(
                    local.alias,
                    local.from_state,
                    shared.epoch,
                    local.to_state,
                    local.reason,
                    actor=f"sequential (pid {os.getpid()})",
                    counts=local.counts,
                    reopens=shared.reopens,
                    since=shared.since,
                )
            except Exception:
                with self._lock:  # tried again at the next sync, in order
                    self._local_transitions[:0] = transitions[index:]
                raise
            if epoch is not None:
                self._adopted_epochs[local.alias] = epoch

    def _adopt_shared(self, alias: str, record: StateRecord) -> None:
        """Follow a shared state newer than what this process last adopted or published."""
        if record.epoch <= self._adopted_epochs.get(alias, 0):
            return
        with self._lock:
            self._adopted_epochs[alias] = record.epoch
            local = self.local.get(alias)
            if local is not None and record.state in (State.CLOSED, State.OPEN, State.HALF_OPEN):
                local.adopt(record.state, record.open_until)
                self._refresh_gates([alias])

    def _count_outcomes(self) -> None:
        """Move recorded outcomes from the deque into per-alias tallies."""
        while True:
            try:
                alias, generation, now, outcome, duration, connecting = self._outcomes.popleft()
            except IndexError:
                return
            slow = outcome is SLOW or duration >= self.policy_of(alias).slow_call_seconds
            self._tally(alias, generation).add(int(now), outcome is FAILURE, slow, connecting)

    def _count_successes(self, second: int) -> None:
        """Under the flush lock: move the quick successes counted since the last flush into the
        tallies, and forget the counters of connections that are gone once they are read."""
        finished = []
        for counter in self._all_counters():
            done = counter.finished  # before reading: a success it still adds is read next time
            fresh = counter.successes - counter.flushed
            if fresh:
                counter.flushed += fresh
                self._tally(counter.alias, counter.generation).add_successes(second, fresh)
            if done:
                finished.append(counter)
        if finished:
            gone = set(finished)
            with self._lock:
                if self.sequential or self._store_down:
                    self._judge_successes(second)  # this process's breakers read them first
                for gate in self.gates.values():
                    gate.counters = [counter for counter in gate.counters if counter not in gone]

    def _tally(self, alias: str, generation: int) -> Tally:
        tally = self._pending.get((alias, generation))
        if tally is None:
            tally = self._pending[(alias, generation)] = Tally()
        return tally

    def flush(self) -> None:
        with self._flush_lock:
            self._count_outcomes()
            self._count_successes(int(time.time()))
            pending, self._pending = self._pending, {}
        if not pending:
            return
        now = time.time()
        try:
            self.store.record(
                [
                    tally.batch(alias, generation, self.policy_of(alias).window_seconds)
                    for (alias, generation), tally in pending.items()
                ],
                now,
                ttl=max(self.policy_of(alias).window_seconds for alias, _ in pending) * 2 + 60,
            )
        except StoreUnavailableError:
            metrics.FLUSH_ERRORS.inc()
            self._keep_for_later(pending, now)
            raise

    def _keep_for_later(self, pending: dict[tuple[str, int], Tally], now: float) -> None:
        """Put unflushed outcomes back, dropping those that left the window meanwhile."""
        with self._flush_lock:
            for key, old in pending.items():
                tally = self._pending.setdefault(key, Tally())
                tally.merge_older(old, int(now) - self.policy_of(key[0]).window_seconds)

    def _reload_policies(self, aliases: list[str]) -> None:
        """An alias's policy changed (in the admin, say): take the new ones, same servers."""
        for alias in aliases:
            new = load_target(alias)
            old = self.targets.get(alias)
            if new is None or old is None or new.policy == old.policy or new.generation != old.generation:
                continue  # a generation change is _reload_target's: it takes the policy along
            self.targets[alias] = new
            with self._lock:
                if alias in self.local:
                    self.local[alias] = SequentialBreaker(alias, new.policy)
                self._refresh_gates([alias])
            logger.warning("alias %s: policy changed", alias)

    def _reload_target(self, alias: str, old: Target) -> None:
        try:
            new = load_target(alias)
        except DatabaseError as exc:
            logger.error("alias %s: generation moved on but the control DB cannot be read: %s", alias, exc)
            return
        if new is not None and new.generation > old.generation:
            self.targets[alias] = new  # one assignment: threads see the old or the new snapshot
            with self._lock:
                self._refresh_gates([alias])  # the new policy, if it changed too
            logger.warning(
                "alias %s: generation %s -> %s, connections move from %s to %s",
                alias,
                old.generation,
                new.generation,
                old.address,
                new.address,
            )

    def _set_states(self, records: dict[str, StateRecord]) -> None:
        # reject_if_open looks aliases up in these two small maps (one assignment each), not in
        # the records; the query path asks it only when the alias's gate says so.
        rejecting = {alias for alias, r in records.items() if r.state in SHARED_REJECTING}
        changed = list(rejecting.symmetric_difference(self._rejected))
        self.states = records
        self._rejected = {alias: records[alias] for alias in rejecting}
        self._disabled = {alias for alias, r in records.items() if r.state is State.DISABLED}
        if changed:
            with self._lock:
                self._refresh_gates(changed)

    def _refresh_gates(self, aliases: list[str]) -> None:
        """Under the lock, after a change of shared state, of this process's own breakers, of a
        policy or of whether Redis answers."""
        for alias in aliases:
            gate = self.gates.get(alias)
            if gate is not None:
                self._refresh_gate(alias, gate)

    def _refresh_gate(self, alias: str, gate: AliasGate) -> None:
        local = self.local.get(alias) if self.sequential or self._store_down else None
        locally_closed = local is None or local.state is CLOSED
        gate.quick_below = self.policy_of(alias).slow_call_seconds if locally_closed else 0.0
        gate.check = alias in self._rejected or not locally_closed

    def _fail_open(self, exc: Exception) -> None:
        # A stale shared "open" must not keep rejecting queries while nobody can close it; this
        # process's own sequential breakers protect it meanwhile. An operator's forced_open or
        # disabled was deliberate: it stays.
        self._set_states({a: r for a, r in self.states.items() if r.state in OPERATOR_STATES})
        if not self._store_down:
            with self._lock:
                if not self.sequential:  # its breakers start now: the evaluator judged what came before
                    for counter in self._all_counters():
                        counter.judged = counter.successes
                self._store_down = True
                self._refresh_gates(list(self.gates))
            logger.error(
                "breaker store %s unreachable (%s): this process judges its own queries until it returns",
                self._safe_url(),
                exc,
            )

    def _safe_url(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.redis_url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


_runtime: BreakerRuntime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> BreakerRuntime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = BreakerRuntime(
                    settings.REDIS_URL,
                    settings.BREAKER_POLICY,
                    settings.BREAKER_SYNC_SECONDS,
                    enabled=settings.BREAKER_ENABLED,
                    sequential=settings.BREAKER_MODE == "sequential",
                )
    return _runtime


def _reset_in_child() -> None:
    if _runtime is not None:
        _runtime._after_fork()


def _flush_at_exit() -> None:
    if _runtime is not None:
        _runtime.stop()
        if _runtime._thread is not None:
            _runtime._thread.join(2.0)  # a flush it is sending must land before ours
        try:
            _runtime.flush()
        except Exception:
            pass


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(_flush_at_exit)
