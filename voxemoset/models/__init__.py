"""Model adapters behind small protocols, offline checkpoint resolution, and tiny test models."""
