"""Reading docker-archives (``docker save``, ``podman save``, skopeo, Nix) in one streaming pass."""
