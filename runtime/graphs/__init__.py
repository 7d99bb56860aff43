"""Graph memory's store: entities and relations per tenant and owner, a projection of the journal."""

from runtime.graphs.factory import make_graph_store
from runtime.graphs.port import EntityHit, EntityNode, GraphStore, RelationEdge, RelationHit

__all__ = ["EntityHit", "EntityNode", "GraphStore", "RelationEdge", "RelationHit", "make_graph_store"]
