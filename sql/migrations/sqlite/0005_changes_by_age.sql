-- The trimmer deletes stream records past their 24 hours oldest first, a batch at a time, and
-- counts those left: both find them by age.
CREATE INDEX changes_created ON changes (created);
