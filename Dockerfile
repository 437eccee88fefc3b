FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml ./
COPY carclinic ./carclinic
COPY staff ./staff
COPY patients ./patients
COPY journeys ./journeys
RUN pip install --upgrade pip==25.3 && pip install .
COPY . .

# Static files are collected at build time: whitenoise serves them, no CDN and no build at run time.
RUN DJANGO_SECRET_KEY=build-only-collectstatic DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput

RUN useradd --create-home --uid 1000 clinic && mkdir -p /app/var && chown clinic /app/var
USER clinic
EXPOSE 8000
CMD ["gunicorn", "carclinic.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
