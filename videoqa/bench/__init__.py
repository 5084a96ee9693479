"""Benchmarks users run on their own models: needle in a video haystack, multiple choice, scene cuts."""
