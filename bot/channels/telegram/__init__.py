"""Telegram: updates in through python-telegram-bot, replies out through the outbox.

Each update becomes an Incoming for the Assistant; the turn's replies are written to the outbox
in the same transaction as the turn, then sent by a Sender (bot/delivery.py) within Telegram's
limits. Status changes made by staff are pushed by a loop that asks the Assistant for each
resident's news. Only private chats are served.

One module a job: settings.py (the environment), client.py (python-telegram-bot's Bot, reading
each update on its own), outgoing.py (rendering and sending outbox rows), webhook.py (the
webhook receiver) and channel.py (the channel: updates in, lifecycle, news pushed).

Every update is stored in the channel_inbox table (bot/services/inbox.py) before Telegram is
told it was received (the next getUpdates offset, or the webhook's 200), and marked processed by
its turn, so a process killed in between runs it at its next start (`TelegramChannel.replay`).
"""

CHANNEL = "telegram"  # the name on residents and outbox rows
