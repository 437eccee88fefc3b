from django.apps import AppConfig


class ApiClientsConfig(AppConfig):
    name = "apiclients"
    verbose_name = "API clients"

    def ready(self):
        # Registers the OpenAPI description of the bearer-key scheme with drf-spectacular.
        from apiclients import schema  # noqa: F401
