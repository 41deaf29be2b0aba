from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core: users, courses, enrolments"


class ShopAdminConfig(admin_apps.AdminConfig):
    """Django's admin (INSTALLED_APPS names this instead of django.contrib.admin), on a site
    whose login form is throttled like /auth/token (core/admin_site.py)."""

    default = False  # core's own config stays CoreConfig
    default_site = "core.admin_site.ShopAdminSite"
