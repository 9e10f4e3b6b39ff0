"""Gateway call methods and topic authorizers, one module per capability (each capability owns
its module here). Every module in this package is imported when the gateway starts; see
server/ws/calls.py for the registration API."""
