"""repository of the deals plugin, one module per entity."""
