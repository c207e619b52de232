"""Small factory functions for tests. Every argument has a sensible default."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Group, User

from dossiers.models import Candidate, ClinicalTrial, Dossier, Drug, Market, Publication
from portal.roles import Role, ensure_role_groups

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def make_market(code: str = "IN", name: str = "India", **kwargs) -> Market:
    market, _ = Market.objects.get_or_create(code=code, defaults={"name": name, **kwargs})
    return market


def make_user(username: str | None = None, *roles: Role, markets: list[Market] | None = None, **kwargs) -> User:
    ensure_role_groups()
    username = username or f"user{next(_seq)}"
    kwargs.setdefault("email", f"{username}@example.org")
    kwargs.setdefault("first_name", username.capitalize())
    kwargs.setdefault("last_name", "Tester")
    user = User.objects.create_user(username=username, password=PASSWORD, **kwargs)
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    for market in markets or []:
        market.members.add(user)
    return user


def make_drug(name: str | None = None, **kwargs) -> Drug:
    return Drug.objects.create(name=name or f"Drug{next(_seq)}", **kwargs)


def make_dossier(drug: Drug | None = None, market: Market | None = None, **kwargs) -> Dossier:
    return Dossier.objects.create(drug=drug or make_drug(), market=market or make_market(), **kwargs)


def make_candidate(dossier: Dossier | None = None, disease: str | None = None, **kwargs) -> Candidate:
    kwargs.setdefault("txgnn_score", 0.9)
    return Candidate.objects.create(
        dossier=dossier or make_dossier(), disease=disease or f"Disease {next(_seq)}", **kwargs
    )


def make_trial(nct_id: str | None = None, **kwargs) -> ClinicalTrial:
    kwargs.setdefault("phase", "Phase 2")
    kwargs.setdefault("status", "Completed")
    return ClinicalTrial.objects.create(nct_id=nct_id or f"NCT{next(_seq):08d}", **kwargs)


def make_publication(pmid: str | None = None, **kwargs) -> Publication:
    kwargs.setdefault("year", 2020)
    return Publication.objects.create(pmid=pmid or str(30000000 + next(_seq)), **kwargs)
