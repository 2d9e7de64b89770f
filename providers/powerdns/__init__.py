"""The ``powerdns`` DNS adapter: a PowerDNS Authoritative server's HTTP API (v1)."""
