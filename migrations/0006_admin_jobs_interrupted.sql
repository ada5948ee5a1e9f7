-- A job running when control stopped is 'interrupted' (resumable), not 'failed'.
ALTER TABLE admin_jobs DROP CONSTRAINT admin_jobs_state_check;
ALTER TABLE admin_jobs ADD CONSTRAINT admin_jobs_state_check
    CHECK (state IN ('running', 'waiting', 'succeeded', 'failed', 'interrupted'));
