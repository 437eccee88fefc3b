from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate


class JourneysConfig(AppConfig):
    name = "journeys"

    def ready(self):
        # The shipped protocols are data files, not migration data: every `migrate` (make run, a
        # deployment, the test database, a test's flush) makes sure each is there, once.
        post_migrate.connect(load_shipped_protocols, sender=self, dispatch_uid="journeys.load_shipped_protocols")


def load_shipped_protocols(sender, *, using=DEFAULT_DB_ALIAS, verbosity=1, stdout=None, apps=None, **kwargs):
    if using != DEFAULT_DB_ALIAS:
        return
    if apps is not None:
        # The schema as migrated (`flush` passes none: it keeps the schema it found). After a partial
        # `migrate journeys 0002`, say, the tables the loader writes are not there yet.
        try:
            model = apps.get_model("journeys", "ProtocolTemplate")
        except LookupError:
            return
        if not any(field.name == "content_hash" for field in model._meta.get_fields()):
            return
    from journeys.services import protocol_load_shipped

    for protocol in protocol_load_shipped():
        if verbosity >= 1 and stdout is not None:
            state = "active" if protocol.is_active else "inactive until an administrator activates it"
            stdout.write(f"  Loaded the shipped protocol {protocol} ({state}).\n")
