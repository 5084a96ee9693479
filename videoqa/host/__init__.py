"""What this machine offers and what happened on it: CPU cores, native-crash records."""
