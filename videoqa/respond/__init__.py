"""What the user reads: answers, captions, chat turns, prompts, and the files they are written to."""
