"""Pure breaker logic: no Django, Redis or Celery imports; time is always an argument."""
