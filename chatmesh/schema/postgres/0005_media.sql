-- Media uploads: the record of each file a user uploads to the object store,
-- the conversations whose messages carry it, and each user's daily quota.
-- The bytes themselves live in the object store under object_key.

CREATE TABLE media_uploads (
    media_id      text PRIMARY KEY,
    owner_user_id text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind          smallint NOT NULL,             -- MessageKind: 3 image .. 6 document
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
    sha256        bytea NOT NULL CHECK (length(sha256) = 32),
    object_key    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The upload URL stops working at this time; not completed by then (and
    -- a grace after), the upload and its object are deleted.
    expires_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    -- First set when a message carries it: from then on it is kept.
    referenced_at timestamptz
);

CREATE INDEX media_uploads_pending ON media_uploads (expires_at) WHERE completed_at IS NULL;
CREATE INDEX media_uploads_unreferenced ON media_uploads (completed_at)
    WHERE completed_at IS NOT NULL AND referenced_at IS NULL;

-- A conversation with messages carrying the media: its members may fetch it.
-- The first and latest such messages bound whose member window must hold one.
CREATE TABLE media_references (
    media_id          text NOT NULL REFERENCES media_uploads (media_id) ON DELETE CASCADE,
    conversation_id   text NOT NULL,
    first_message_id  bigint NOT NULL,
    latest_message_id bigint NOT NULL,
    PRIMARY KEY (media_id, conversation_id)
);

-- Uploads started per user and UTC day, counted when the URL is issued.
CREATE TABLE media_quota (
    user_id text NOT NULL,
    day     date NOT NULL,
    uploads integer NOT NULL,
    bytes   bigint NOT NULL,
    PRIMARY KEY (user_id, day)
);
