"""Unit tests for `metafuse`, one module per package module."""
