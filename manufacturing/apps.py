from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    name = "manufacturing"
    verbose_name = "Manufacturing: the product's road"
