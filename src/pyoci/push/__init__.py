"""Publishing images: OCI registries (:mod:`.registry`) and static registry trees (:mod:`.static`).

Both implement the small :class:`~pyoci.push.target.Target` protocol and share one walk of the
image (:mod:`.walk`); :func:`push` (in :mod:`.core`) drives them.
"""

from pyoci.push.auth import Credentials, find_credentials
from pyoci.push.core import PushedDestination, PushResult, parse_destination, push
from pyoci.push.registry import RegistryClient, RegistryOptions, RegistryTarget
from pyoci.push.static import StaticDestination, StaticTarget, StaticTree, upload_s3
from pyoci.push.target import Mount, Target

__all__ = [
    "Credentials",
    "Mount",
    "PushResult",
    "PushedDestination",
    "RegistryClient",
    "RegistryOptions",
    "RegistryTarget",
    "StaticDestination",
    "StaticTarget",
    "StaticTree",
    "Target",
    "find_credentials",
    "parse_destination",
    "push",
    "upload_s3",
]
