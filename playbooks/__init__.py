"""The playbooks that ship with failover, installed as ``failover.playbooks`` so that every install
has them (``failover playbooks`` lists them; ``failover run NAME`` runs one by name). They are data:
``failover.playbook.shipped`` finds them."""
