"""URL routes: the admin, Prometheus metrics and the health check."""

from django.contrib import admin
from django.urls import path

from breaker_worker import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
]
