"""The commands: convert, merge, push, inspect, verify, gc; siblings that never import each other.

Each module is one command's library function (re-exported by :mod:`pyoci`) over the layers below
(sources, targets, the layout and archive stores, the byte core). The CLI (:mod:`pyoci.cli`) is a
thin layer over these functions.
"""
