"""Everything videoqa knows about one video, built once from the stages below and cached."""
