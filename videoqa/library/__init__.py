"""Many videos in one folder, searchable at once."""
