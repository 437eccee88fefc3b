"""The bare baseline: one constant JSON view behind only the middleware `django-admin startproject` writes
(no whitenoise, no cookie-skipping, no axes, no idle sign-out, no history). The status call is measured
against this, on its own gunicorn with the same number of workers."""

from carclinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_bare"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
