-- Clients allowed the CIBA grant (poll mode): 1 when the client may start
-- logins through the backchannel authentication endpoint. A client that
-- only uses CIBA needs no redirect URI, so redirect_uris may be '[]'.
ALTER TABLE idserver_oidc_clients ADD COLUMN ciba INTEGER NOT NULL DEFAULT 0;
