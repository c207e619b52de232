"""Clients for the public evidence sources: ClinicalTrials.gov, PubMed, openFDA and RxNav.

Each source module returns typed dataclasses and raises the errors in `errors`; the shared
`transport` adds timeouts, retries and the cross-worker rate limit of `ratelimit`.
"""
