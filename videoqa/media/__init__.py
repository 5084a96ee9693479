"""Decoding a video: probing, frame decoders, sampling by time, and times as people read them."""
