"""``python -m pyoci``: the command line (named ``pyoci`` in its messages, as when installed)."""

from pyoci.cli.main import run

run()
