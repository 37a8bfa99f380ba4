"""Kafka security from the environment, and the librdkafka settings it becomes."""

from __future__ import annotations

import pytest

from chatmesh.kafka_io import KafkaSettings
from chatmesh.kafka_security import KafkaSecurity, client_config
from chatmesh.settings import SettingsError

SASL_SSL = {
    "CHATMESH_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "CHATMESH_KAFKA_CA_FILE": "/etc/chatmesh/kafka/ca.crt",
    "CHATMESH_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "CHATMESH_KAFKA_USERNAME": "msgsvc",
    "CHATMESH_KAFKA_PASSWORD": "s3cret-password",
}


def test_unset_is_plaintext_without_credentials() -> None:
    security = KafkaSecurity.from_env({})
    assert security == KafkaSecurity()
    assert client_config("k:9092", security) == {
        "bootstrap.servers": "k:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_sasl_ssl_verifies_the_broker_and_its_name_and_logs_in() -> None:
    security = KafkaSecurity.from_env(SASL_SSL)
    assert client_config("k:9093", security) == {
        "bootstrap.servers": "k:9093",
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/etc/chatmesh/kafka/ca.crt",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "msgsvc",
        "sasl.password": "s3cret-password",
    }


def test_ssl_with_a_client_certificate_and_no_name_check() -> None:
    security = KafkaSecurity.from_env(
        {
            "CHATMESH_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CHATMESH_KAFKA_CERT_FILE": "/tls/tls.crt",
            "CHATMESH_KAFKA_KEY_FILE": "/tls/tls.key",
            "CHATMESH_KAFKA_TLS_CHECK_HOSTNAME": "false",
        }
    )
    # No CA file: librdkafka verifies by the system's trust store.
    assert client_config("k:9093", security) == {
        "bootstrap.servers": "k:9093",
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.certificate.location": "/tls/tls.crt",
        "ssl.key.location": "/tls/tls.key",
    }


def test_the_password_stays_out_of_the_settings_repr() -> None:
    settings = KafkaSettings.from_env(SASL_SSL, "cm:")
    assert settings.security.password == "s3cret-password"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.security)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"CHATMESH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of"),
        ({"CHATMESH_KAFKA_CA_FILE": "/ca.crt"}, "need CHATMESH_KAFKA_SECURITY_PROTOCOL SSL"),
        (
            {"CHATMESH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CHATMESH_KAFKA_CA_FILE": "/c"},
            "not SASL_PLAINTEXT",
        ),
        ({"CHATMESH_KAFKA_PASSWORD": "x"}, "need CHATMESH_KAFKA_SECURITY_PROTOCOL SASL_SSL"),
        ({**SASL_SSL, "CHATMESH_KAFKA_SASL_MECHANISM": ""}, "needs CHATMESH_KAFKA_SASL_MECHANISM"),
        ({**SASL_SSL, "CHATMESH_KAFKA_SASL_MECHANISM": "GSSAPI"}, "got 'GSSAPI'"),
        ({**SASL_SSL, "CHATMESH_KAFKA_PASSWORD": ""}, "needs CHATMESH_KAFKA_USERNAME and"),
        ({**SASL_SSL, "CHATMESH_KAFKA_KEY_FILE": "/k"}, "_CERT_FILE and .*_KEY_FILE go together"),
    ],
)
def test_settings_that_would_be_ignored_are_refused(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        KafkaSecurity.from_env(env)


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(SettingsError, match="needs CHATMESH_KAFKA_USERNAME"):
        KafkaSecurity("SASL_SSL", sasl_mechanism="PLAIN", username="u")
