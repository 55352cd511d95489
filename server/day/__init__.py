"""The rep's day (SPEC section 14): the order of the day's stops."""
