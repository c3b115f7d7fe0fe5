"""The archive: WebDataset shards per license group, their Parquet indexes, manifest, errors."""
