"""Reading and querying the search index (keyword, vectors, filters): shared by the index and serve stages."""
