from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        # Registers the token scheme with drf-spectacular before any schema is generated.
        from accounts import schema  # noqa: F401
        from accounts.two_factor import on_login

        # Session bookkeeping, not workflow: what the new session owes for two-factor is worked out once at
        # login (as django-otp itself does on this signal), so later pages pay no query for it.
        user_logged_in.connect(on_login, dispatch_uid="accounts.two_factor.on_login")
        # Set-up, not workflow: the role groups and their admin permissions exist after every migrate,
        # so a fresh production database offers the roles in the user admin without the demo loader.
        post_migrate.connect(_ensure_role_groups, dispatch_uid="accounts.ensure_role_groups")


def _ensure_role_groups(sender: AppConfig, **kwargs: object) -> None:
    """After the last app's post_migrate, when every app's permissions exist."""
    from django.apps import apps

    from portal.roles import ensure_role_groups

    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if sender is not with_models[-1]:
        return

    ensure_role_groups()
