"""The WebSocket edge: authenticates clients, holds their connections and
translates their frames into batched gRPC streams to msgsvc."""
