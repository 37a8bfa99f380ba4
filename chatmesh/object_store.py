"""Where media bytes live: an S3-compatible object store.

Clients upload and download through pre-signed URLs, so the store is reached
at two addresses: ``endpoint`` is where msgsvc itself talks to it (checking
and deleting objects), ``public_endpoint`` is what the URLs it signs point
at, the address clients reach. Locally they are the same SeaweedFS S3
gateway; in a cluster the first is usually an in-cluster Service and the
second a public host name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatmesh.settings import env_str

DEFAULT_S3_ENDPOINT = "http://127.0.0.1:18333"
DEFAULT_S3_REGION = "us-east-1"
DEFAULT_S3_BUCKET = "chatmesh-media"
# The local store's only identity (deploy/local/backing.sh writes it into
# SeaweedFS's S3 configuration); real deployments set their own.
LOCAL_ACCESS_KEY_ID = "chatmesh-local"
LOCAL_SECRET_ACCESS_KEY = "chatmesh-local-secret"


@dataclass(frozen=True, slots=True)
class ObjectStoreSettings:
    endpoint: str = DEFAULT_S3_ENDPOINT
    public_endpoint: str = DEFAULT_S3_ENDPOINT
    region: str = DEFAULT_S3_REGION
    bucket: str = DEFAULT_S3_BUCKET
    access_key_id: str = LOCAL_ACCESS_KEY_ID
    secret_access_key: str = LOCAL_SECRET_ACCESS_KEY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ObjectStoreSettings:
        endpoint = env_str(env, "S3_ENDPOINT", DEFAULT_S3_ENDPOINT)
        return cls(
            endpoint=endpoint,
            public_endpoint=env_str(env, "S3_PUBLIC_ENDPOINT", endpoint),
            region=env_str(env, "S3_REGION", DEFAULT_S3_REGION),
            bucket=env_str(env, "S3_BUCKET", DEFAULT_S3_BUCKET),
            access_key_id=env_str(env, "S3_ACCESS_KEY_ID", LOCAL_ACCESS_KEY_ID),
            secret_access_key=env_str(env, "S3_SECRET_ACCESS_KEY", LOCAL_SECRET_ACCESS_KEY),
        )

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads, for a child process."""
        return {
            "CHATMESH_S3_ENDPOINT": self.endpoint,
            "CHATMESH_S3_PUBLIC_ENDPOINT": self.public_endpoint,
            "CHATMESH_S3_REGION": self.region,
            "CHATMESH_S3_BUCKET": self.bucket,
            "CHATMESH_S3_ACCESS_KEY_ID": self.access_key_id,
            "CHATMESH_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def redacted(self) -> dict[str, str]:
        """For logs: everything but the secret."""
        return {
            "endpoint": self.endpoint,
            "public_endpoint": self.public_endpoint,
            "region": self.region,
            "bucket": self.bucket,
            "access_key_id": self.access_key_id,
        }
