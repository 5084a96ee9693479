"""What videoqa keeps on disk: the model registry and its fetching, folders, and the index cache."""
