"""Object store settings travel to child processes intact; run buckets are valid names."""

from __future__ import annotations

import re

from chatmesh.isolation import bucket_name
from chatmesh.object_store import ObjectStoreSettings

# S3's rules for new buckets, less the ones no generated name can break
# (no IP-address form, no "xn--" prefix).
BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def test_settings_survive_the_environment() -> None:
    settings = ObjectStoreSettings(
        endpoint="http://seaweedfs:8333",
        public_endpoint="https://media.example",
        region="eu-west-1",
        bucket="media",
        access_key_id="id",
        secret_access_key="secret",
    )
    assert ObjectStoreSettings.from_env(settings.to_env()) == settings


def test_run_buckets_are_valid_bucket_names() -> None:
    for run_id in ("t1a2b3c4d", "bFFEE0011"):
        name = bucket_name(run_id)
        assert BUCKET.fullmatch(name), name
        assert run_id.lower() in name
