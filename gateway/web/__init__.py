"""The gateway's HTTP face: plain HTTP on the WebSocket port (pages, the Mem0-compatible REST
API, webhook administration), served by aiohttp beside websockets."""
