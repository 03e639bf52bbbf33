"""modelcache Azure Blob Storage adapter."""
