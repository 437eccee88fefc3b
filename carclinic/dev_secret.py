"""The secret key of a development checkout (DJANGO_DEBUG on, no DJANGO_SECRET_KEY): made at random the first
time it is needed and kept in var/secret_key (mode 0600, ignored by git), so sessions survive a restart and the
web server and the worker agree. A checkout where var/ cannot be written (read-only, a fresh CI clone without
rights) gets a random key for the process instead of failing."""

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("carclinic.settings")


def checkout_secret_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError:
        return _for_this_process(path)
    key = secrets.token_urlsafe(50)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once keep the first one's key.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError:
        return _for_this_process(path)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def _for_this_process(path: Path) -> str:
    log.warning("Cannot write %s: using a random secret key for this process only.", path)
    return secrets.token_urlsafe(50)
