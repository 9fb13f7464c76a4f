"""Servers for the push tests: the real distribution registry, a token issuer, a fault-injecting proxy."""
