from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        # Registers the token scheme with drf-spectacular before any schema is generated.
        from accounts import schema  # noqa: F401
        from accounts.two_factor import on_login

        # Session bookkeeping, not workflow: what the new session owes for two-factor is worked out once at
        # login (as django-otp itself does on this signal), so later pages pay no query for it.
        user_logged_in.connect(on_login, dispatch_uid="accounts.two_factor.on_login")
