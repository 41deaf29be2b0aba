"""Django's createsuperuser, refusing a username that looks like a taken one (core.models.username_key)
as it refuses a taken one, instead of ending in the unique index's IntegrityError."""

from django.contrib.auth.management.commands import createsuperuser

from core.models import User


class Command(createsuperuser.Command):
    def _validate_username(self, username: str, verbose_field_name: str, database: str) -> str | None:
        error = super()._validate_username(username, verbose_field_name, database)
        if error is None and User.lookalike_exists(username, using=database):
            return f"Error: a user with a {verbose_field_name} that looks the same already exists."
        return error
