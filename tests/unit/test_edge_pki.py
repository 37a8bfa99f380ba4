"""The local edge's certificate: its own CA, the names clients dial it by."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from chatmesh.mesh.pki import (
    CA_FILE,
    CERT_FILE,
    EDGE_CA_DIR,
    LocalCA,
    Principal,
    issue_local_edge,
    issue_local_mesh,
)


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(certificate: x509.Certificate) -> x509.SubjectAlternativeName:
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_edge_certificate_names_localhost_and_loopback(tmp_path: Path) -> None:
    edge = issue_local_edge(tmp_path)
    sans = _sans(_certificate(edge / CERT_FILE))
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_edge_ca_is_not_the_mesh_ca(tmp_path: Path) -> None:
    issue_local_mesh(tmp_path)
    edge = issue_local_edge(tmp_path)
    edge_ca = _certificate(tmp_path / EDGE_CA_DIR / CA_FILE)
    mesh_ca = _certificate(tmp_path / "ca" / CA_FILE)
    assert edge_ca.subject != mesh_ca.subject
    assert edge_ca.public_key() != mesh_ca.public_key()
    served = _certificate(edge / CERT_FILE)
    served.verify_directly_issued_by(edge_ca)
    assert (edge / CA_FILE).read_bytes() == (tmp_path / EDGE_CA_DIR / CA_FILE).read_bytes()


def test_edge_ca_is_kept_and_its_certificate_renewed(tmp_path: Path) -> None:
    first = _certificate(issue_local_edge(tmp_path) / CERT_FILE)
    ca_before = (tmp_path / EDGE_CA_DIR / CA_FILE).read_bytes()
    second = _certificate(issue_local_edge(tmp_path) / CERT_FILE)
    assert (tmp_path / EDGE_CA_DIR / CA_FILE).read_bytes() == ca_before
    assert second.serial_number != first.serial_number
    second.verify_directly_issued_by(_certificate(tmp_path / EDGE_CA_DIR / CA_FILE))


def test_service_certificates_still_carry_no_ip_addresses(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca")
    issued = ca.issue(Principal.service("msgsvc"), tmp_path / "msgsvc")
    sans = _sans(_certificate(issued / CERT_FILE))
    assert sans.get_values_for_type(x509.IPAddress) == []
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
