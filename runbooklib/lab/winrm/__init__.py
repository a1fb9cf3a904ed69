"""The lab's PowerShell remoting endpoint: WS-Management + PSRP over HTTPS or sealed HTTP, with
the authentication (:mod:`.auth`) and session configurations (:mod:`.configurations`) Windows serves."""
