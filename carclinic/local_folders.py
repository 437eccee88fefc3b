"""The folders the embedded defaults write into, made when a process that uses them starts, never when the
settings are imported (a test run, a container with a read-only code folder, or a process pointed at
PostgreSQL and Redis needs none of them)."""

from pathlib import Path


def make_local_folders() -> list[Path]:
    """Create the SQLite database's folder and the filesystem broker's folders, for whichever of the two
    is in use; returns the folders it made or found."""
    from django.conf import settings

    folders = []
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]) not in ("", ":memory:"):
        folders.append(Path(database["NAME"]).parent)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(options[name]) for name in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders
