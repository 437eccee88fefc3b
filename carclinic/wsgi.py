import os

from django.core.wsgi import get_wsgi_application

from carclinic.local_folders import make_local_folders

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carclinic.settings")
application = get_wsgi_application()
make_local_folders()
