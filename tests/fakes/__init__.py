"""Local stand-ins for outside services, speaking their wire protocols on loopback."""
