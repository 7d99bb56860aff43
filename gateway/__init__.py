"""The WebSocket gateway (issue 4): not built yet.

It will import the engine's model and config from ``runtime`` and reach owners through
``actors.client.ClusterMemory`` / ``actors.router.Router``, whose subscriptions already stream
ordered, resumable events from the shard actors.
"""
