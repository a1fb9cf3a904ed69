"""s2s-runbooks: set up, prove and audit Microsoft server-to-server (OAuth 2.0) trusts.

Where things live, from the bottom up (no module imports one above it in a cycle; a test checks):

* **foundations** — :mod:`.errors` (the exception tree), :mod:`.secrets` (secret references),
  :mod:`.inventory` and :mod:`.targets` (servers, tenants, and which parameters name a run's targets);
* **clients** — :mod:`.remote` (PowerShell remoting), :mod:`.graph` (Microsoft Graph, any service
  principal), :mod:`.certs`, :mod:`.metadata`, :mod:`.tokens`, and :mod:`.wellknown` (principal ids,
  metadata paths, fixed-realm issuers);
* **products** — :mod:`.product` (the session base every product client shares), :mod:`.sharepoint`
  (the farm client), :mod:`.sharepoint_trust` (what a farm's trusts depend on) and :mod:`.trust_set`
  (the one-way trusts farms and their partners imply);
* **steps** — :mod:`.steps` (check → plan → apply → verify), :mod:`.fan_out` (one step over several
  targets), :mod:`.farm_steps` and
  :mod:`.principal_steps` (steps made by factories for the farm or principal they act on);
* **scenarios** — :mod:`.scenarios`, one module per trust;
* **runs** — :mod:`.runner` (what a notebook calls), :mod:`.manifest` and :mod:`.record` (the run
  scrap, the archive), :mod:`.execute` (papermill) and :mod:`.cli` (the ``runbook`` command);
* :mod:`.lab` — the simulated estate, a package per product.
"""

__version__ = "0.1.0"
