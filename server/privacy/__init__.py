"""Privacy (SPEC section 12): a record's export for an access request, its erasure on
request, and the retention of history and conflict values (docs/privacy.md)."""
