"""The lab's PowerShell remoting endpoint: WS-Management + PSRP over HTTPS."""
