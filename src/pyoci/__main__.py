"""``python -m pyoci``: the command line."""

from pyoci.cli.main import main

main()
