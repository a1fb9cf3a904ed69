"""The simulated estate: SharePoint, Office Online Server, Skype, Exchange and a Microsoft 365 tenant on loopback.

A package per product, beside the parts every product shares:

=========================  =================================================================================
:mod:`.sharepoint`         the SharePoint Server farms ``sp-a`` and ``sp-b``
:mod:`.oos`                the Office Online Server farm ``oos-1`` and ``oos-2``
:mod:`.tenant`             the Microsoft 365 tenant: Entra ID, ACS metadata, Graph, SharePoint Online
:mod:`.product`            what a product is to the estate (hosts, open, mount, reset, inventory)
:mod:`.registry`           the products the estate runs; a new product (``oos/``, ``skype/``, ``exchange/``) is one line
:mod:`.estate`             starts, stops, resets every host (WinRM on https and http); inventory; faults
:mod:`.store`              the one persisted state store (atomic 0600 writes, initial state, one lock rule)
:mod:`.powershell`         PowerShell behaviour every product's cmdlets share, and PowerShell's texts
:mod:`.metadata_download`  how a Windows server downloads a partner's JSON metadata (.NET WebException texts)
:mod:`.s2s`                the lab's own S2S token verifier and the receiver half products mount
:mod:`.windows`            what every lab Windows server answers about itself (its domain and forest)
:mod:`.winrm`              the WinRM/PSRP endpoint: auth, session configurations, a product's command table
:mod:`.http`               the lab's HTTPS server, routes, faults and authentication
:mod:`.pki`                the lab CA and signing certificates
:mod:`.commands`           ``runbook lab up|down|status|reset``; :mod:`.serve` runs an estate in the background
=========================  =================================================================================
"""
