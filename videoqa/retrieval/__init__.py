"""Finding the evidence for a question: text search, temporal relations, and relevance."""
