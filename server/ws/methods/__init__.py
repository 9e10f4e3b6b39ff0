"""Gateway call methods and topic authorizers, one module per capability (each capability owns
its module here and names it in server/capabilities.py, which imports it before the gateway
starts). See server/ws/calls.py for the registration API. The modules import the registry
(server.ws.calls); the registry never imports them."""
