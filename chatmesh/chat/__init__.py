"""``python -m chatmesh.chat USER``: a terminal chat client for people.

- ``commands``: what a typed line asks for (pure).
- ``render``: every line of text the client prints, from protobuf values (pure).
- ``model``: what the client knows of its conversations and of its own
  messages' ticks, updated by events (pure).
- ``login``: a dev token from the local cluster's ``/dev/token``.
- ``app``: the prompt_toolkit session over a ``chatmesh.client.Device``.
"""
