"""The visual stage: image embedders, SceneTilling scene cuts, and the per-video visual index."""
