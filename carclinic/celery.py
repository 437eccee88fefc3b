import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carclinic.settings")

app = Celery("carclinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_local_folders(sender, **kwargs):
    """The filesystem broker's folders (`make run`), when Celery first reads its settings: in the worker and
    beat at start, in a web process at its first task."""
    from carclinic.local_folders import make_local_folders

    make_local_folders()
