"""Test media whose content is known: synthetic and narrated videos, seeded facts, voices, samples."""
