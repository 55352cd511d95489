"""Nearby prospects: the accounts around a point (SPEC section 5), and the background job
that gives accounts with an address and no position their coordinates."""
