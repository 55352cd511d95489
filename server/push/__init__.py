"""Web Push reminders.

vapid.py (the server's key pair), endpoints.py (which push services may be sent to) and
sender.py (encrypt, sign, send, and what the answer means). Import from those modules: this
package is also the Piccolo app (tables.py), and loading it must not pull in the HTTP stack.
"""
