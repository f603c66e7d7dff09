"""Reading and writing files: atomic writes, safe pickles, result formats."""
