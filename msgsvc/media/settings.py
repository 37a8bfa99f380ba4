"""Media limits that operators tune: URL lifetimes, quotas, clean-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatmesh.settings import SettingsError, env_int

GiB = 1024**3


@dataclass(frozen=True, slots=True)
class MediaSettings:
    # Long enough for a 100 MiB video over a slow mobile link; short enough
    # that a leaked URL is soon worthless.
    upload_url_ttl_s: int = 15 * 60
    # Download URLs are fetched at once; a client asks again when it needs to.
    download_url_ttl_s: int = 5 * 60
    daily_upload_bytes: int = 4 * GiB
    daily_uploads: int = 1000
    # An upload not completed when its URL expires is deleted this long
    # after, so a PUT started just before the expiry can finish.
    sweep_grace_s: int = 10 * 60
    # A completed upload no message references is deleted after this long.
    unreferenced_ttl_s: int = 7 * 24 * 3600
    sweep_interval_s: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MediaSettings:
        d = cls()
        settings = cls(
            upload_url_ttl_s=env_int(env, "MEDIA_UPLOAD_URL_TTL_S", d.upload_url_ttl_s),
            download_url_ttl_s=env_int(env, "MEDIA_DOWNLOAD_URL_TTL_S", d.download_url_ttl_s),
            daily_upload_bytes=env_int(env, "MEDIA_DAILY_UPLOAD_BYTES", d.daily_upload_bytes),
            daily_uploads=env_int(env, "MEDIA_DAILY_UPLOADS", d.daily_uploads),
            sweep_grace_s=env_int(env, "MEDIA_SWEEP_GRACE_S", d.sweep_grace_s),
            unreferenced_ttl_s=env_int(env, "MEDIA_UNREFERENCED_TTL_S", d.unreferenced_ttl_s),
            sweep_interval_s=env_int(env, "MEDIA_SWEEP_INTERVAL_S", d.sweep_interval_s),
        )
        # S3 refuses pre-signed URLs valid for more than seven days.
        for name, ttl in (
            ("MEDIA_UPLOAD_URL_TTL_S", settings.upload_url_ttl_s),
            ("MEDIA_DOWNLOAD_URL_TTL_S", settings.download_url_ttl_s),
        ):
            if not 1 <= ttl <= 7 * 24 * 3600:
                raise SettingsError(f"CHATMESH_{name} must be between 1 and 604800 seconds")
        return settings
