"""What every simulated Windows server answers about itself, whatever product it runs.

:func:`register_computer_domain` adds the handler of the ``windows/get-computer-domain``
template (``runbooklib/templates/windows``) to a server's command table: the computer's name,
its Active Directory domain and forest, read at each call so a test can move a server.
"""

from __future__ import annotations

from typing import Callable

from .winrm.api import CommandTable, Invocation, PSObj

__all__ = ["COMPUTER_DOMAIN_TEMPLATE", "ComputerDomain", "register_computer_domain"]

COMPUTER_DOMAIN_TEMPLATE = "windows/get-computer-domain"

# (computer name, domain, forest) of the server now.
ComputerDomain = Callable[[], tuple[str, str, str]]


def register_computer_domain(table: CommandTable, computer_domain: ComputerDomain) -> None:
    """Answer ``windows/get-computer-domain`` with what ``computer_domain()`` says."""

    def get_computer_domain(inv: Invocation) -> None:
        computer, domain, forest = computer_domain()
        inv.write_output(PSObj(["System.Management.Automation.PSCustomObject", "System.Object"],
                               {"ComputerName": computer, "Domain": domain, "Forest": forest}))

    table.template(COMPUTER_DOMAIN_TEMPLATE, 1, {})(get_computer_domain)
