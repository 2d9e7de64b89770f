"""The DNS conformance suite against PowerDNS (the lab's ``onprem``): through its HTTP API, and
through libcloud's PowerDNS driver (which holds one value per record set)."""

from tests.conformance.dns import DnsConformance


class TestPowerDnsApi(DnsConformance):
    provider = "onprem"


class TestLibcloudPowerDnsDriver(DnsConformance):
    provider = "onprem-libcloud"
