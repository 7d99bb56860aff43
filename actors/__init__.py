"""The actor runtime: the engine hosted on Ray shard actors, with shared model actors."""
