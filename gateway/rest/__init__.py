"""Mem0 Platform's REST API on the gateway's port: a self-hosted drop-in for mem0ai's MemoryClient."""
