-- Push credentials beyond one token, and what a push may show.
--
-- push_params holds the provider's other fields: APNs {"topic",
-- "environment"}, Web Push {"p256dh", "auth"} (push_token is then the
-- subscription's endpoint). show_previews: whether a push may carry message
-- text; off until the device opts in.
ALTER TABLE devices
    ADD COLUMN push_params   jsonb,
    ADD COLUMN show_previews boolean NOT NULL DEFAULT false;

-- Conversations a user does not want pushes for, until a time or (NULL) for
-- good. Live deliveries and sync are not affected.
CREATE TABLE conversation_mutes (
    user_id         text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    conversation_id text NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    muted_until     timestamptz,
    PRIMARY KEY (user_id, conversation_id)
);
