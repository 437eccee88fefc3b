#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carclinic.settings")
    from django.core.management import execute_from_command_line

    from carclinic.local_folders import make_local_folders

    make_local_folders()  # var/ for SQLite and the filesystem broker under `make run`; nothing with real servers
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
