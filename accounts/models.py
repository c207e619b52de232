"""Personal API tokens. The secret is shown once at creation; only its SHA-256 hash is stored."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiToken(models.Model):
    """A personal token a user created to call the API as themselves, with a scope and an optional expiry."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text='What the token is for, e.g. "portfolio tracker".')
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the token, used to find it.")
    secret_hash = models.CharField(max_length=64, help_text="SHA-256 (hex) of the whole token string.")
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    def allows(self, method: str) -> bool:
        """A read token may only read; a write token may do what its user may do."""
        return self.scope == self.Scope.WRITE or method.upper() in SAFE_METHODS
