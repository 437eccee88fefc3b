from functools import cached_property

from django.contrib.auth.models import AbstractUser

from staff.roles import Role


class User(AbstractUser):
    """A member of the clinic's staff. Roles are Django groups named after `Role` values."""

    class Meta:
        ordering = ["last_name", "first_name", "username"]

    @cached_property
    def roles(self) -> frozenset[str]:
        names = {group.name for group in self.groups.all()}
        if self.is_superuser:
            names.add(Role.ADMIN)
        return frozenset(name for name in names if name in Role.values)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def __str__(self) -> str:
        return self.display_name
