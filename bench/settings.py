"""The product's settings with the benchmark's URL conf: the product's URLs plus the constant views the
benchmark measures against. `bench/bench_api.py` runs gunicorn with DJANGO_SETTINGS_MODULE=bench.settings;
nothing in the product imports bench/."""

from carclinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
