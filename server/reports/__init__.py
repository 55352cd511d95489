"""Managers' team reports and their team's devices (SPEC section 7)."""
