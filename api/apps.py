from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST layer: views, serializers, key authentication, throttle, idempotency and error bodies.
    No models: the clients, their keys and the stored Idempotency-Key answers are `apiclients`' tables."""

    name = "api"
    verbose_name = "REST API"

    def ready(self):
        # Registers the OpenAPI description of the bearer-key scheme with drf-spectacular.
        from api import schema  # noqa: F401
