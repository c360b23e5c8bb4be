"""Thin Celery tasks: primitives in, one service call, a small dict out. Names are explicit
because beat rows store them as strings."""

from celery import shared_task

from . import services


@shared_task(name="breaker_worker.evaluate", ignore_result=True)
def evaluate() -> dict:
    return services.evaluate_breakers()


@shared_task(name="breaker_worker.failover", acks_late=True, reject_on_worker_lost=True)
def failover(alias: str, epoch: int) -> dict:
    return services.fail_over(alias, epoch)


@shared_task(name="breaker_worker.probe")
def probe(alias: str, actor: str = "evaluator") -> dict:
    return services.probe(alias, actor)


# Not acks_late: an operator's failover moves on once more each time it runs, so a redelivered
# copy must not run it again (at most once; the operator can ask again).
@shared_task(name="breaker_worker.fail_over_now", acks_late=False)
def fail_over_now(alias: str, actor: str) -> dict:
    return services.fail_over_now(alias, actor)


@shared_task(name="breaker_worker.failback", ignore_result=True)
def failback(alias: str) -> dict:
    return services.check_failback(alias)
