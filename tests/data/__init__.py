"""Tests of synface.data."""
