"""Every write to dossiers, one module per subject (importers, curation, evidence refresh)."""
