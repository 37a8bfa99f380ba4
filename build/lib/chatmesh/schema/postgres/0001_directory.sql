-- Users, their devices, conversations and memberships: the relational
-- directory. Messages themselves live in Cassandra.

CREATE TABLE users (
    user_id      text PRIMARY KEY,
    display_name text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    user_id       text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id     text NOT NULL,
    push_platform text,          -- fcm | apns | webpush; NULL when the device has no push token
    push_token    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE conversations (
    conversation_id text PRIMARY KEY,
    kind            smallint NOT NULL,            -- 1 direct, 2 group
    title           text NOT NULL DEFAULT '',
    -- History reads walk time buckets down to this instant and no further.
    created_at_ms   bigint NOT NULL,
    last_message_id bigint NOT NULL DEFAULT 0
);

CREATE TABLE members (
    conversation_id     text NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    user_id             text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role                smallint NOT NULL DEFAULT 1,   -- 1 member, 2 admin
    joined_at           timestamptz NOT NULL DEFAULT now(),
    delivered_watermark bigint NOT NULL DEFAULT 0,
    read_watermark      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE INDEX members_by_user ON members (user_id);
