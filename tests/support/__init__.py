"""Test infrastructure that stands in for third parties (a push service, ...), not for our code."""
