"""Stories: 24-hour posts, the tray, seen-by lists, replies, reactions and audiences."""
