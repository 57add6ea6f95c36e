"""Batch lakehouse projections: event-sourced e-commerce events to validated marketing marts."""

__version__ = "0.1.0"
