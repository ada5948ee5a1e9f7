-- Admin login without account-wide lockout (issue 11).
--
-- bulwark-control no longer locks an account for everyone: failures back off per
-- (user, address) in memory. `failed_logins` and `locked_until` stay for older binaries and
-- are cleared here and by `bulwark-init admin unlock`; nothing sets them any more.
-- `unlocked_at` tells a running control that an operator unlocked the account from the
-- command line (it then forgets that user's backoffs); `password_changed_at` records that
-- the bootstrap password no longer works (its file is then deleted).
--
-- The audit table's ownership moves to a role nobody logs in as; only the Postgres
-- superuser can do that (scripts/up.sh and compose run migrations/superuser/audit-owner.sql
-- after the migrations).
ALTER TABLE admin_users
    ADD COLUMN IF NOT EXISTS unlocked_at         TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS password_changed_at TIMESTAMPTZ;
UPDATE admin_users SET failed_logins = 0, locked_until = NULL
 WHERE failed_logins <> 0 OR locked_until IS NOT NULL;
