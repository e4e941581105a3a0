"""Benchmarks of ducto_olap against PostgreSQL, run with ``python -m benchmarks run``.

A run writes files, never only a screen: ``<mode>.json`` holds the machine,
the versions, the data sizes and every timing; :mod:`benchmarks.render` turns
that JSON into the Markdown table and the chart, and can be rerun on it alone.
"""
