"""The text channels: speech (Whisper), on-screen text (OCR), and the passages built from them."""
