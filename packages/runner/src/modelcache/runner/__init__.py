"""modelcache runner."""
