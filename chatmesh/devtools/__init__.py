"""Developer endpoints of a local cluster: the web client's files and tokens
for dev users. Run only by ``LocalCluster`` (``make up``, the tests); never
deployed, since whoever reaches it may act as any user."""
