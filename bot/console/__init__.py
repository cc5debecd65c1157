"""The staff web console: accounts, request queue, conversations, NLU inbox, dashboard, Open311."""
