import os

from django.core.asgi import get_asgi_application

from carclinic.local_folders import make_local_folders

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carclinic.settings")
application = get_asgi_application()
make_local_folders()
