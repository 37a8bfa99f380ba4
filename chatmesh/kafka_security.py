"""How the Kafka clients authenticate and encrypt: one settings value, read
from the environment, and the one function that turns it into librdkafka
configuration, which every client (producer, consumer, admin) starts from.

Unset, everything is PLAINTEXT without credentials, as the local broker
runs. Settings that the chosen protocol would silently ignore (a CA file
with PLAINTEXT, a password without SASL) are refused instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chatmesh.settings import ENV_PREFIX, SettingsError, TlsFiles, env_bool, env_str

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# What the brokers we run against offer; GSSAPI and OAUTHBEARER would need
# more than a user name and password.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    # SSL and SASL_SSL: the CA the brokers' certificates are verified by
    # (without one, the system's: librdkafka probes the usual locations) and
    # a client certificate for listeners that require one.
    tls: TlsFiles = field(default_factory=TlsFiles)
    # The broker's certificate must name the host in the bootstrap list (or
    # the one it advertises); switched off, the chain is still verified.
    check_hostname: bool = True
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        return cls(
            protocol=env_str(env, "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            tls=TlsFiles.from_env(env, "KAFKA"),
            check_hostname=env_bool(env, "KAFKA_TLS_CHECK_HOSTNAME", True),
            sasl_mechanism=(env.get(f"{ENV_PREFIX}KAFKA_SASL_MECHANISM") or "").upper() or None,
            username=env.get(f"{ENV_PREFIX}KAFKA_USERNAME") or None,
            password=env.get(f"{ENV_PREFIX}KAFKA_PASSWORD") or None,
        )

    def __post_init__(self) -> None:
        """Raises ``SettingsError`` unless every setting given takes effect."""
        if self.protocol not in PROTOCOLS:
            raise SettingsError(
                f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)},"
                f" got {self.protocol!r}"
            )
        if self.tls.any and not self.uses_tls:
            raise SettingsError(
                f"{ENV_PREFIX}KAFKA_CA_FILE, _CERT_FILE and _KEY_FILE need"
                f" {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL, not {self.protocol}"
            )
        sasl_given = any(v is not None for v in (self.sasl_mechanism, self.username, self.password))
        if not self.uses_sasl:
            if sasl_given:
                raise SettingsError(
                    f"{ENV_PREFIX}KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD need"
                    f" {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT,"
                    f" not {self.protocol}"
                )
            return
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError(
                f"{self.protocol} needs {ENV_PREFIX}KAFKA_SASL_MECHANISM, one of"
                f" {', '.join(SASL_MECHANISMS)}; got {self.sasl_mechanism!r}"
            )
        if self.username is None or self.password is None:
            raise SettingsError(
                f"{self.protocol} needs {ENV_PREFIX}KAFKA_USERNAME and {ENV_PREFIX}KAFKA_PASSWORD"
            )


PLAINTEXT = KafkaSecurity()


# librdkafka's configuration, as confluent-kafka takes it.
ClientConfig = dict[str, str | int | float | bool]


def client_config(bootstrap: str, security: KafkaSecurity) -> ClientConfig:
    """librdkafka settings that reach and log in to the brokers; each client
    adds its own (group, acks, timeouts) on top."""
    config: ClientConfig = {
        "bootstrap.servers": bootstrap,
        "security.protocol": security.protocol,
    }
    if security.uses_tls:
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if security.check_hostname else "none"
        )
        if security.tls.ca_file is not None:
            config["ssl.ca.location"] = str(security.tls.ca_file)
        if security.tls.cert_file is not None and security.tls.key_file is not None:
            config["ssl.certificate.location"] = str(security.tls.cert_file)
            config["ssl.key.location"] = str(security.tls.key_file)
    if security.uses_sasl:
        assert security.sasl_mechanism and security.username and security.password
        config["sasl.mechanism"] = security.sasl_mechanism
        config["sasl.username"] = security.username
        config["sasl.password"] = security.password
    return config
