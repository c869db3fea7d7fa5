"""Message preferences: the channels a user accepts and the language they are written to in
(`/api/v1/me/preferences`), and how delivery reaches them."""
