"""Usernames unique after NFKC and case-folding: User.username_key, filled for existing users.

Accounts that already look alike (`probe` and `Probe` could both exist before) are kept, and both
can still log in: the oldest holds the plain key, each newer one gets `<key>#<id>`, which no
username can produce (`#` is not allowed in one), so the name is not free for anyone else.
"""

import unicodedata

from django.db import migrations, models


def username_key(username):
    # A copy of core.models.username_key as it is today: a migration must not change with the code.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def fill_keys(apps, schema_editor):
    User = apps.get_model("core", "User")
    taken = set()
    for user in User.objects.order_by("pk").only("pk", "username").iterator():
        key = username_key(user.username)
        if key in taken:
            key = f"{key}#{user.pk}"
        taken.add(key)
        User.objects.filter(pk=user.pk).update(username_key=key)


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_sessions"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_key",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_key",
            field=models.TextField(editable=False, unique=True),
        ),
    ]
