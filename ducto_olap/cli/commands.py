"""Imports every command module so each registers itself on the ``cli`` group."""

# One line per command module, in the order of the flow.
