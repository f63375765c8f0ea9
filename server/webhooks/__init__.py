"""Integration events: typed payloads, the Redis Stream outbox written inside the changes
that cause them, and signed delivery to the operator's endpoints (docs/webhooks.md)."""
