"""Fan-out workers: route group messages from the message log to members' devices.

Their own process (``python -m msgsvc.fanout``), as many as the log has
partitions, in one consumer group: Kafka gives each worker a share of the
partitions and moves a dead worker's share to the others.
"""
