"""Settings refuse malformed environment values with a message naming the variable."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

PROBE = (
    "import django, json, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings'); django.setup();"
    "from django.conf import settings as s;"
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'eager': s.CELERY_TASK_ALWAYS_EAGER,"
    " 'cache': s.CACHES['default']['BACKEND']}))"
)


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    unset = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=full_env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
        ({"DATABASE_URL": "mysql://x/y"}, "unsupported scheme 'mysql'"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL='http://localhost' must start with redis://"),
        ({"EMAIL_PORT": "abc"}, "EMAIL_PORT='abc' is not an integer"),
    ],
)
def test_bad_environment_stops_startup_with_a_clear_message(env: dict[str, str], message: str) -> None:
    result = _start(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_no_services_configured_falls_back_to_sqlite_and_inline_tasks() -> None:
    result = _start({})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.sqlite3",
        "eager": True,
        "cache": "django.core.cache.backends.locmem.LocMemCache",
    }


def test_configured_services_are_used() -> None:
    result = _start({"DATABASE_URL": "postgres://u@db:5432/portal", "REDIS_URL": "redis://cache:6379/0"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.postgresql",
        "eager": False,
        "cache": "django.core.cache.backends.redis.RedisCache",
    }


@pytest.mark.django_db
def test_migrate_creates_the_role_groups_with_their_admin_permissions() -> None:
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from portal.roles import Role

    Group.objects.all().delete()
    call_command("migrate", verbosity=0)
    groups = {group.name: group for group in Group.objects.prefetch_related("permissions")}
    assert set(groups) == {role.value for role in Role}
    assert any(perm.codename == "change_candidate" for perm in groups[Role.CURATOR.value].permissions.all())
