"""memstream over the network: the gateway process in front of the memory API.

A websockets server (``server``) gives each WebSocket client a ``connection`` that speaks the wire
``protocol`` (JSON or MessagePack frames), checks signed tokens (``auth``) and admission
(``limits``), runs requests through ``dispatch`` and streams memory events from one upstream
subscription per owner (``fanout``, ``members``). Plain-HTTP requests on the same port get the
viewer, metrics and the HTTP API. ``client.MemoryClient`` is the application side. The memory
behind it is ``AsyncMemory`` in this process or ``actors.client.ClusterMemory`` on Ray.
"""
