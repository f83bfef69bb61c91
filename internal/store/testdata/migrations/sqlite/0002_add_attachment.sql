ALTER TABLE notes ADD COLUMN attachment BLOB;
