"""A replicated key-value store on a consistent-hash ring (system ``kv``)."""
