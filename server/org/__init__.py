"""The organisation's settings an admin changes at run time (docs/automation.md)."""
