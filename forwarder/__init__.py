"""workmail-forwarder: Amazon WorkMail audit and email event logs to SIEMs."""

__version__ = "0.1.0"
