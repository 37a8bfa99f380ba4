-- Who may see a user's presence (online status and last seen):
-- 1 everyone who shares a conversation with them, 2 nobody.
ALTER TABLE users ADD COLUMN presence_visibility smallint NOT NULL DEFAULT 1;
