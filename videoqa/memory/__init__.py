"""VideoLLaMB-style recurrent memory over scenes."""
