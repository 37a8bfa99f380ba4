-- Groups: members who join and leave, roles, and changes applied in the
-- order of the system messages that record them (decision 0011).

ALTER TABLE conversations
    ADD COLUMN created_by    text,                        -- groups: the creator
    -- Id of the system message that set the title: a change applies only
    -- over an older one, so replaying an old message cannot undo a newer.
    ADD COLUMN title_version bigint NOT NULL DEFAULT 0;

ALTER TABLE members
    -- The first message id the member may read: the system message that
    -- added them (0 for direct conversations: everything).
    ADD COLUMN joined_id bigint NOT NULL DEFAULT 0,
    -- The first message id the member may no longer read; NULL while a
    -- member. Rows of former members are kept to tell them they left.
    ADD COLUMN left_id   bigint,
    -- Id of the system message that last changed this row (see title_version).
    ADD COLUMN version   bigint NOT NULL DEFAULT 0;

ALTER TABLE members
    ADD CONSTRAINT members_window CHECK (left_id IS NULL OR left_id > joined_id);

-- Groups: the GroupCreated system message, which a retried creation returns.
ALTER TABLE conversations ADD COLUMN created_event_id bigint NOT NULL DEFAULT 0;
