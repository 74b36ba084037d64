"""Peer implementations of the registry-core reference model, for a side-by-side speed benchmark.

Import as ``benchmarks.peers.<module>`` with the repository root on ``sys.path`` (the scripts
here put it there themselves). See ``README.md`` in this folder.
"""
