"""Channel adapters: each one verifies and translates what comes in, and sends what goes out.

Only these modules import vendor SDKs; vendor objects never travel further in.
"""
