"""Where breakers keep their shared state (Redis); no Django imports."""

from .base import BreakerStore, StateRecord, StoreUnavailableError
from .redis_store import RedisBreakerStore

__all__ = ["BreakerStore", "RedisBreakerStore", "StateRecord", "StoreUnavailableError"]
