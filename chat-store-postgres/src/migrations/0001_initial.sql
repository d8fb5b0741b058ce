-- chat-store-postgres schema, version 1.
-- Every Store query walks one of these indexes; see the comments on each.
-- Ids are compared byte-wise (COLLATE "C"), the order Rust's `str` uses.

CREATE TABLE users (
    id           text COLLATE "C" PRIMARY KEY,
    display_name text,
    last_seen    timestamptz
);

CREATE TABLE conversations (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('room', 'direct')),
    -- rooms
    name        text COLLATE "C",
    visibility  text CHECK (visibility IN ('public', 'private')),
    -- direct conversations: the pair in sorted order
    direct_a    text COLLATE "C",
    direct_b    text COLLATE "C",
    created_by  text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL,
    last_seq    bigint NOT NULL DEFAULT 0,
    CHECK ((kind = 'room' AND name IS NOT NULL AND visibility IS NOT NULL
            AND direct_a IS NULL AND direct_b IS NULL)
        OR (kind = 'direct' AND name IS NULL AND direct_a IS NOT NULL
            AND direct_b IS NOT NULL AND direct_a < direct_b))
);
-- room_by_name, and one room per name
CREATE UNIQUE INDEX conversations_room_name ON conversations (name) WHERE kind = 'room';
-- open_direct: one conversation per pair
CREATE UNIQUE INDEX conversations_direct_pair ON conversations (direct_a, direct_b)
    WHERE kind = 'direct';

CREATE TABLE members (
    conversation  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id       text COLLATE "C" NOT NULL,
    role          text NOT NULL CHECK (role IN ('owner', 'member')),
    delivered_seq bigint NOT NULL DEFAULT 0,
    read_seq      bigint NOT NULL DEFAULT 0 CHECK (read_seq <= delivered_seq),
    joined_at     timestamptz NOT NULL,
    PRIMARY KEY (conversation, user_id)
);
-- conversations_of, list_conversations, unread_total
CREATE INDEX members_by_user ON members (user_id, conversation);

CREATE TABLE messages (
    conversation uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq          bigint NOT NULL CHECK (seq > 0),
    id           uuid NOT NULL,
    sender       text COLLATE "C" NOT NULL,
    client_id    text COLLATE "C",
    kind         text NOT NULL CHECK (kind IN ('user', 'system')),
    body         text NOT NULL,
    created_at   timestamptz NOT NULL,
    edited_at    timestamptz,
    deleted_at   timestamptz,
    -- history, message, edit, delete, unread (a range of seq), the last message
    PRIMARY KEY (conversation, seq)
);
-- idempotent appends: (sender, client id) at most once, across every node
CREATE UNIQUE INDEX messages_client_id ON messages (sender, client_id)
    WHERE client_id IS NOT NULL;

CREATE TABLE friendships (
    a            text COLLATE "C" NOT NULL,
    b            text COLLATE "C" NOT NULL,
    state        text NOT NULL CHECK (state IN ('none', 'pending', 'accepted')),
    pending_from text COLLATE "C",
    a_blocks_b   boolean NOT NULL DEFAULT false,
    b_blocks_a   boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL,
    CHECK (a < b),
    CHECK ((state = 'pending') = (pending_from IS NOT NULL)),
    -- friendship(x, y), and friendships(user) where user is a
    PRIMARY KEY (a, b)
);
-- friendships(user) where user is b
CREATE INDEX friendships_by_b ON friendships (b, a);
