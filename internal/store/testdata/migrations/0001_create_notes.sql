-- Same on both engines, so it lives at the root.
CREATE TABLE notes (
	id         BIGINT PRIMARY KEY,
	created_at BIGINT NOT NULL, -- Unix microseconds
	body       TEXT   NOT NULL
);
