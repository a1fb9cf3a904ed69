"""The simulated estate: SharePoint, Office Online Server, Skype, Exchange and a Microsoft 365 tenant on loopback."""
