"""WSGI entry point for gunicorn and runserver."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_wsgi_application()

from breaker_worker.checks import refuse_to_start_if_misconfigured  # noqa: E402  (needs apps loaded)

refuse_to_start_if_misconfigured()
