"""preload."""
