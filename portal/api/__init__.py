"""API plumbing shared by every app's endpoints: errors, pagination, throttling, ETags, schema, URLs."""
