"""Test support: the archive builder, one set of layout readers, test images, and the servers (the real
distribution registry, a token issuer, a fault-injecting proxy, TLS certificates)."""
