"""LINE at the edges: the webhook, the inbox and outbox with their workers, and LINE message builders within LINE's limits."""
